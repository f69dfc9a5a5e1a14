"""The `segnas` command. The only package that parses argv; nothing outside it imports it."""
