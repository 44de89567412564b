"""The aiohttp side: join pages now; signalling, SFU, portal and mail worker later."""
