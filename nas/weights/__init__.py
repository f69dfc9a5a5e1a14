"""Starting from pretrained weights: read a reference framework's file without that framework
(`readers`), convert its layouts (`layout`) and fill an encoder's variables (`apply`)."""
