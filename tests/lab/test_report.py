"""jaxopt-lab report: a static site whose links all resolve and which shows every claim."""

import html.parser
import json
import pathlib

from jaxopt_lab.lab import cli
from jaxopt_lab.lab import reproduce as rep


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.links += [v for k, v in attrs if k in ("href", "src")]

    def handle_data(self, data):
        self.text.append(data)


def _parse(path: pathlib.Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text())
    return parser


def _check_site(out: pathlib.Path) -> None:
    """Every page links only to files of the site."""
    for page in out.glob("*.html"):
        for link in _parse(page).links:
            assert (out / link).is_file(), f"{page.name} links to {link}, which does not exist"


def test_site_shows_every_claim_figure_and_links_only_to_existing_files(toy_project, tmp_path, monkeypatch):
    monkeypatch.chdir(toy_project)
    work, out = tmp_path / "runs", tmp_path / "site"
    result, _ = rep.reproduce("toy-claim", quick=True, workdir=work)
    (result.run_dir / "figures" / "curve.png").write_bytes(b"\x89PNG fake")  # copied, not read
    claims = json.loads((result.run_dir / "claims.json").read_text())
    claims["claims"][0]["quote"] = "x < 1 & <b>bold</b>"  # text is escaped, not markup
    (result.run_dir / "claims.json").write_text(json.dumps(claims))

    assert cli.main(["report", str(work), "--out", str(out)]) == 0
    _check_site(out)
    page = _parse(out / "toy-claim.html")
    text = " ".join(page.text)
    for claim in claims["claims"]:
        assert claim["name"] in text and claim["check"] in text and claim["quote"] in text
    assert "toy-claim/figures_curve.png" in page.links and "indicative" in text
    assert "<b>bold</b>" not in (out / "toy-claim.html").read_text()
    index = _parse(out / "index.html")
    assert "toy-claim.html" in index.links and "FAIL (indicative)" in " ".join(index.text)

    rep.reproduce("toy-claim", workdir=work)  # a full-size run takes the quick run's place
    cli.main(["report", str(work), "--out", str(out)])
    text = " ".join(_parse(out / "toy-claim.html").text)
    assert "full size" in text and "--quick run" not in text


def test_failed_run_and_empty_runs_dir(toy_project, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(toy_project)
    work, out = tmp_path / "runs", tmp_path / "site"
    work.mkdir()
    assert cli.main(["report", str(work), "--out", str(out)]) == 0
    assert "No reproduction runs under" in (out / "index.html").read_text()
    assert "no reproduction runs under" in capsys.readouterr().out

    rep.reproduce("toy-claim", workdir=work, overrides=["fail_at_step=3"])
    assert cli.main(["report", str(work), "--out", str(out)]) == 0
    _check_site(out)
    text = " ".join(_parse(out / "toy-claim.html").text)
    assert "did not finish" in text and "boom at step 3" in text
    assert cli.main(["report", str(tmp_path / "nowhere")]) == 2
