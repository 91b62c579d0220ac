"""deploy/nginx/votesvc.conf: `nginx -t` takes it as shipped, included in an http block
as Debian's nginx.conf includes conf.d/, with a throwaway certificate where it looks."""

from __future__ import annotations

import re
from pathlib import Path

from tests.deploy.tools import DEPLOY, require, run

SITE = DEPLOY / "nginx" / "votesvc.conf"


def test_nginx_t_passes(tmp_path: Path) -> None:
    nginx = require("nginx", "Debian's nginx: deploy/system-packages.sh test, as root")
    openssl = require("openssl", "Debian's openssl: deploy/system-packages.sh test, as root")
    site = SITE.read_text()
    # The certificate paths are relative to nginx's configuration directory: here tmp_path.
    certificate = re.search(r"^\s*ssl_certificate\s+(\S+);", site, re.M)
    key = re.search(r"^\s*ssl_certificate_key\s+(\S+);", site, re.M)
    assert certificate is not None
    assert key is not None
    assert not Path(certificate[1]).is_absolute()
    (tmp_path / certificate[1]).parent.mkdir(parents=True, exist_ok=True)
    run(
        openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-subj", "/CN=vote.example.org",
        "-keyout", tmp_path / key[1], "-out", tmp_path / certificate[1],
    )  # fmt: skip
    temp = tmp_path / "temp"
    temp.mkdir()
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\n"
        "events {}\n"
        "http {\n"
        f"    client_body_temp_path {temp}/body;\n"
        f"    proxy_temp_path {temp}/proxy;\n"
        f"    fastcgi_temp_path {temp}/fastcgi;\n"
        f"    uwsgi_temp_path {temp}/uwsgi;\n"
        f"    scgi_temp_path {temp}/scgi;\n"
        "    access_log off;\n"
        f"    include {SITE};\n"
        "}\n"
    )
    out = run(nginx, "-t", "-c", tmp_path / "nginx.conf", "-e", tmp_path / "error.log")
    assert "test is successful" in out
    assert "[emerg]" not in out


def test_the_stream_is_the_only_long_read() -> None:
    site = SITE.read_text()
    assert re.findall(r"proxy_read_timeout (\d+)s;", site) == ["10", "60"]
    stream = site[site.index("location = /v1/tally/stream") :]
    assert "proxy_buffering off;" in stream
