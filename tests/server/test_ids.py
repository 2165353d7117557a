"""Ids sort in the order they were made, also within one millisecond."""

from __future__ import annotations

from server.db.ids import PREFIXES, new_id


def test_ids_made_in_a_row_sort_in_creation_order() -> None:
    # Thousands per millisecond: without counting up, ids of one millisecond sort at random.
    ids = [new_id("job") for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_ids_keep_their_shape() -> None:
    for kind, prefix in PREFIXES.items():
        ident = new_id(kind)
        head, _, body = ident.partition("-")
        assert head == prefix and len(body) == 22
