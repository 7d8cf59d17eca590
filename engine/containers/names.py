"""Container names: Docker's naming rule, and a random adjective_noun when none is given."""
from __future__ import annotations

import re
import secrets
from collections.abc import Callable

from engine.errors import Internal, InvalidArgument

_VALID = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")

_ADJECTIVES = (
    "agile", "amber", "ancient", "azure", "bold", "breezy", "bright", "brisk", "calm", "candid", "cheerful",
    "clever", "cosmic", "crimson", "crisp", "curious", "daring", "dusty", "eager", "earnest", "fearless",
    "fluffy", "frosty", "gentle", "gleaming", "golden", "graceful", "hidden", "humble", "icy", "jovial",
    "keen", "kind", "lively", "lucid", "lunar", "mellow", "misty", "modest", "nimble", "noble", "patient",
    "plucky", "polished", "quiet", "radiant", "rapid", "restless", "rustic", "sandy", "serene", "shiny",
    "silent", "sleek", "smooth", "snowy", "solar", "spry", "steady", "stormy", "sturdy", "sunny", "swift",
    "tidy", "tranquil", "velvet", "vivid", "wandering", "warm", "wild", "wise", "witty", "zesty",
)
_NOUNS = (
    "albatross", "avocet", "bittern", "bunting", "buzzard", "cardinal", "condor", "cormorant", "crane",
    "curlew", "dipper", "dunlin", "eagle", "egret", "falcon", "finch", "flamingo", "gannet", "goldcrest",
    "grebe", "harrier", "heron", "hoopoe", "ibis", "jacana", "jay", "kestrel", "kingfisher", "kite",
    "lapwing", "lark", "linnet", "magpie", "martin", "merlin", "nightjar", "nuthatch", "oriole", "osprey",
    "owl", "pelican", "petrel", "pipit", "plover", "puffin", "quail", "raven", "redstart", "robin",
    "sandpiper", "shrike", "siskin", "skylark", "sparrow", "starling", "stork", "swallow", "swift", "tern",
    "thrush", "toucan", "turnstone", "vireo", "wagtail", "warbler", "waxwing", "woodpecker", "wren",
)


def validate(name: str) -> str:
    """The name without its optional leading "/"; InvalidArgument if Docker would refuse it."""
    bare = name.removeprefix("/")
    if not _VALID.fullmatch(bare):
        raise InvalidArgument(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return bare


def generate(taken: Callable[[str], bool]) -> str:
    """A free random name; after a few collisions a numeric suffix makes one free."""
    for attempt in range(20):
        name = f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NOUNS)}"
        if attempt >= 5:
            name += str(secrets.randbelow(100))
        if not taken(name):
            return name
    raise Internal("could not find a free container name")
