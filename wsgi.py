from authgate import create_app

app = create_app()
