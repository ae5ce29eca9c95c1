"""Exports of the archive to other formats (WACZ)."""
