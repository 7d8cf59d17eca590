import pytest

from runtime.errors import InvalidArgument
from runtime.reference import Reference, familiar, parse

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "domain", "path", "tag", "digest", "full"),
    [
        ("busybox", "docker.io", "library/busybox", "latest", None, "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io", "library/busybox", "1.36", None, "docker.io/library/busybox:1.36"),
        ("user/img", "docker.io", "user/img", "latest", None, "docker.io/user/img:latest"),
        ("docker.io/busybox", "docker.io", "library/busybox", "latest", None, "docker.io/library/busybox:latest"),
        ("index.docker.io/busybox", "docker.io", "library/busybox", "latest", None,
         "docker.io/library/busybox:latest"),
        ("index.docker.io/user/img:v1", "docker.io", "user/img", "v1", None, "docker.io/user/img:v1"),
        ("127.0.0.1:5000/library/busybox:latest", "127.0.0.1:5000", "library/busybox", "latest", None,
         "127.0.0.1:5000/library/busybox:latest"),
        ("localhost/x", "localhost", "x", "latest", None, "localhost/x:latest"),
        ("localhost:5000/x", "localhost:5000", "x", "latest", None, "localhost:5000/x:latest"),
        # Without a '/', "localhost:5000" is image "localhost" tagged "5000", as in Docker.
        ("localhost:5000", "docker.io", "library/localhost", "5000", None, "docker.io/library/localhost:5000"),
        (f"host:5000/a/b@{DIGEST}", "host:5000", "a/b", None, DIGEST, f"host:5000/a/b@{DIGEST}"),
        (f"busybox:1@{DIGEST}", "docker.io", "library/busybox", "1", DIGEST, f"docker.io/library/busybox:1@{DIGEST}"),
        (f"busybox@{DIGEST}", "docker.io", "library/busybox", None, DIGEST, f"docker.io/library/busybox@{DIGEST}"),
        ("example.com/a.b/c__d/e-f--g:Tag_1.x-y", "example.com", "a.b/c__d/e-f--g", "Tag_1.x-y", None,
         "example.com/a.b/c__d/e-f--g:Tag_1.x-y"),
        ("[::1]:5000/img:t", "[::1]:5000", "img", "t", None, "[::1]:5000/img:t"),
        ("Registry.Example.COM/img", "Registry.Example.COM", "img", "latest", None,
         "Registry.Example.COM/img:latest"),
        ("a" * 60 + ".com/b", "a" * 60 + ".com", "b", "latest", None, "a" * 60 + ".com/b:latest"),
    ],
)
def test_parse_valid(text, domain, path, tag, digest, full):
    ref = parse(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert str(ref) == full
    assert parse(str(ref)) == ref  # the full form is a fixed point


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "at least one component"),
        ("Busybox", "must be lowercase"),
        ("docker.io/User/img", "must be lowercase"),
        ("busybox:", "invalid tag"),
        ("busybox:-bad", "invalid tag"),
        ("busybox:" + "a" * 129, "invalid tag"),
        ("busybox@sha256:abc", "invalid digest"),
        ("busybox@md5:" + "a" * 32, "invalid digest"),
        (f"busybox@{DIGEST}@{DIGEST}", "invalid digest"),
        ("a/b/", "component"),
        ("/busybox", "component"),
        ("a//b", "component"),
        ("-busybox", "component"),
        ("busy--box_", "component"),
        ("a___b", "component"),
        ("a b", "invalid"),
        ("host:port/img", "invalid registry domain"),
        ("-host.com/img", "invalid registry domain"),
        ("ab" * 32, "64-byte hexadecimal"),
        ("example.com/" + "a" * 250, "255 characters"),
    ],
)
def test_parse_invalid(text, fragment):
    with pytest.raises(InvalidArgument) as info:
        parse(text)
    assert info.value.message.startswith("invalid reference format")
    assert fragment in info.value.message


def test_pathological_input_is_rejected_quickly():
    # A backtracking-prone separator rule would take effectively forever here.
    with pytest.raises(InvalidArgument):
        parse("a" + "-a" * 5000 + "!")


@pytest.mark.parametrize(
    ("text", "short"),
    [
        ("busybox", "busybox:latest"),
        ("docker.io/library/busybox:1", "busybox:1"),
        ("user/img", "user/img:latest"),
        ("docker.io/library/a/b", "library/a/b:latest"),
        (f"busybox@{DIGEST}", f"busybox@{DIGEST}"),
        ("127.0.0.1:5000/library/busybox:latest", "127.0.0.1:5000/library/busybox:latest"),
        ("localhost/x", "localhost/x:latest"),
    ],
)
def test_familiar(text, short):
    assert familiar(text) == short
    assert familiar(parse(text)) == short


def test_properties_and_builders():
    ref = parse("busybox:1")
    assert ref.name == "docker.io/library/busybox"
    assert ref.repository_path == "library/busybox"
    assert ref.api_domain == "registry-1.docker.io"
    assert ref.familiar_name == "busybox"
    assert ref.locator == "1"

    pinned = ref.with_digest(DIGEST)
    assert str(pinned) == f"docker.io/library/busybox:1@{DIGEST}"
    assert pinned.locator == DIGEST  # the digest is what gets fetched
    assert str(parse(f"busybox@{DIGEST}").with_tag("2")) == f"docker.io/library/busybox:2@{DIGEST}"
    assert parse("127.0.0.1:5000/x").api_domain == "127.0.0.1:5000"
    assert isinstance(ref, Reference)

    with pytest.raises(InvalidArgument, match="invalid tag"):
        ref.with_tag("no/slash")
    with pytest.raises(InvalidArgument, match="invalid digest"):
        ref.with_digest("sha256:short")
