"""The WeChat official account (公众号) channel: verified push in, passive replies out."""
