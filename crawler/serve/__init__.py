"""``govcrawl serve``: a read-only web UI (Datasette + our plugin and templates) over the index."""
