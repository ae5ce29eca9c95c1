"""``govcrawl crawl`` keeps the terminal quiet: the log goes to the state dir, -v brings it back."""

from __future__ import annotations

from pathlib import Path

from crawler.report import build_report, format_table

REPO = Path(__file__).resolve().parent.parent
CASSETTES = REPO / "cassettes"
SITES = ("atxlyj", "ningbo")


def _crawl(govcrawl, tmp_path, *extra):
    return govcrawl("crawl", *SITES, "--cassettes", str(CASSETTES),
                    "--archive", str(tmp_path / "arch"), "--state-dir", str(tmp_path / "state"),
                    *extra, cwd=tmp_path, check=True)


def test_crawl_not_on_a_tty_prints_a_few_lines_per_site_and_logs_to_the_state_dir(
        govcrawl, tmp_path):
    proc = _crawl(govcrawl, tmp_path)
    lines = proc.stdout.splitlines()
    assert len(lines) <= 3 * len(SITES) + 2, proc.stdout
    assert lines[0].split()[:2] == ["site", "pages"]
    assert "[scrapy" not in proc.stdout and "[scrapy" not in proc.stderr
    assert proc.stderr == ""
    log = tmp_path / "state" / "logs" / "crawl.log"
    assert log.is_file() and "Spider closed" in log.read_text(encoding="utf-8")
    assert f"log: {log}" in proc.stdout


def test_verbose_puts_the_log_back_on_stderr(govcrawl, tmp_path):
    proc = _crawl(govcrawl, tmp_path, "-s", "LOG_LEVEL=INFO")
    assert "Spider closed" not in proc.stderr  # -s LOG_LEVEL alone keeps the log in its file
    proc = govcrawl("-v", "crawl", "ningbo", "--cassettes", str(CASSETTES),
                    "--archive", str(tmp_path / "arch2"), "--state-dir", str(tmp_path / "state2"),
                    cwd=tmp_path, check=True)
    assert "[scrapy" in proc.stderr and "Spider closed" in proc.stderr
    assert not (tmp_path / "state2" / "logs" / "ningbo.log").exists()


def test_404s_are_counted_apart_from_failures():
    stats = {
        "downloader/response_count": 10,
        "downloader/response_status_count/200": 6,
        "downloader/response_status_count/404": 3,
        "downloader/response_status_count/503": 1,
        "downloader/exception_type_count/twisted.internet.error.TimeoutError": 2,
    }
    report = build_report("s", stats)
    assert report["not_found"] == 3
    assert report["errors"] == {"TimeoutError": 2, "http_503": 1}
    header, row, detail = format_table([report]).splitlines()
    cells = dict(zip(header.split(), row.split(), strict=True))
    assert cells["404"] == "3" and cells["errors"] == "3"
    assert "http_404" not in detail


def test_live_display_redraws_one_row_per_site_in_place():
    import io

    from crawler.live import LiveDisplay

    class FakeStats:
        def __init__(self, stats):
            self.stats = stats

        def get_stats(self):
            return self.stats

    class FakeCrawler:
        def __init__(self, stats):
            self.stats = FakeStats(stats)

    out = io.StringIO()
    display = LiveDisplay([("a", FakeCrawler({"downloader/response_count": 5,
                                              "govcrawl/dedup/new": 2})),
                           ("b", FakeCrawler({}))], out=out)
    display.draw()
    display.draw()
    text = out.getvalue()
    assert text.count("\x1b[3F") == 1  # the second draw moves up over header + 2 rows
    first = text.split("\x1b[3F")[0].replace("\x1b[K", "").splitlines()
    assert first[0].split() == ["site", "pages", "new", "duplicate", "changed", "errors", "queue"]
    assert first[1].split() == ["a", "5", "2", "0", "0", "0", "0"]
