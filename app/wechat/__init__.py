"""Everything that speaks to WeChat: API clients, OAuth, the message server, the stand-in."""
