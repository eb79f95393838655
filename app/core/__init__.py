"""Small pieces every area uses: money formatting, time, Redis, errors."""
