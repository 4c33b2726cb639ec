"""The embedded demo (``make run``): a sample protected app behind a small forward-auth proxy
that does what nginx ``auth_request`` does, so the whole loop is visible without nginx.
Not for production: production puts nginx (docs/deployment.md) in front."""
