"""Seeds a Canopy project with context entries through the bulk API (100 per request).

usage: seed_context.py BASE_URL KEY COUNT [--project ID] [--offset N]

Entries get bodies of 20 words drawn from a 2,000-word vocabulary (so one word matches about
1 % of entries), one of ten tags `t0`..`t9` plus the tag `all`, and type `fact`. Deterministic.
"""
import json
import random
import sys
import urllib.request

base, key, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
opts = dict(zip(sys.argv[4::2], sys.argv[5::2]))
project = opts.get("--project")
offset = int(opts.get("--offset", "0"))
rng = random.Random(42 + offset)
vocab = [f"w{i:04d}" for i in range(2000)]


def post(items):
    req = urllib.request.Request(
        f"{base}/v1/context/entries/bulk",
        data=json.dumps({"entries": items}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                 **({"X-Canopy-Project": project} if project else {})},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 201, r.status


done = 0
while done < count:
    n = min(100, count - done)
    items = []
    for i in range(n):
        k = offset + done + i
        items.append({
            "type": "fact",
            "title": f"entry {k} {rng.choice(vocab)}",
            "body": " ".join(rng.choice(vocab) for _ in range(20)),
            "tags": [f"t{k % 10}", "all"],
        })
    post(items)
    done += n
