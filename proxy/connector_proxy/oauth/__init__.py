"""The browser OAuth2 flow: sealed state, browser binding, redirect checks, provider clients."""
