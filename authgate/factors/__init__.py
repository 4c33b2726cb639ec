"""Pure second-factor checks (TOTP, WebAuthn, recovery codes); the caller keeps replay state."""
