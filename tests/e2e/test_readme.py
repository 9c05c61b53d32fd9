"""The README's API example runs as printed: the shell block between the
readme-test markers is executed against a server of the test's own, with
only the demo paths and URL substituted."""
import json
import re
import subprocess

from conftest import REPO, SLOW


def readme_block():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- readme-test:begin -->\s*```sh\n(.*?)```\s*<!-- readme-test:end -->", text, re.S)
    assert m, "README has no readme-test block"
    return m.group(1)


def test_readme_api_example_works_as_printed(server, tmp_path):
    cred = tmp_path / "demo-credential.json"
    cred.write_text(json.dumps({"client_id": server.client_id, "client_secret": server.client_secret}))
    script = readme_block()
    script = script.replace("var/demo/tls/server.crt", str(server.ca_cert))
    script = script.replace("var/demo/demo-credential.json", str(cred))
    script = script.replace("https://127.0.0.1:8443", "https://127.0.0.1:%d" % server.port)
    assert "var/demo" not in script and ":8443" not in script
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=str(REPO),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60 * SLOW)
    assert r.returncode == 0, r.stderr.decode()
    lines = r.stdout.decode().splitlines()
    blue = re.fullmatch(r"blue invoice (\d{20})", lines[0])
    form = re.fullmatch(r"red form (RF\d{18})", lines[1])
    assert blue and form, lines[:2]
    red = json.loads(lines[2])
    assert red["color"] == "red"
    assert red["original_number"] == blue.group(1)
    assert red["red_form_id"] == form.group(1)
    # the figures the README quotes
    assert red["total_with_tax"] == "-477.00"
    assert red["total_with_tax_words"] == "（负数）肆佰柒拾柒圆整"


def test_readme_zh_cn_opens_the_same_way_and_carries_the_same_example():
    """README.zh-CN.md (linked from the top of README.md) has equal place: it
    opens with `make run` and `make test` too, and its API example is the one
    this file runs, character for character."""
    en = (REPO / "README.md").read_text(encoding="utf-8")
    zh = (REPO / "README.zh-CN.md").read_text(encoding="utf-8")
    assert "(README.zh-CN.md)" in en.splitlines()[0]
    for text in (en, zh):
        first = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
        assert first.startswith("make run") and "\nmake test" in first, first
    m = re.search(r"<!-- readme-test:begin -->\s*```sh\n(.*?)```\s*<!-- readme-test:end -->",
                  zh, re.S)
    assert m and m.group(1) == readme_block()
