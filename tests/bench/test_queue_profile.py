"""The queue benchmark's profile summary puts samples in the right route part and layer."""

from __future__ import annotations

from pathlib import Path

from queue_profile import breakdown

ROUTER = "steelyard/api/native/router.py"


def test_samples_go_to_their_route_part_and_leaf_layer(tmp_path: Path) -> None:
    stacks = tmp_path / "stacks.txt"
    stacks.write_text(
        "\n".join(
            [
                f"main (x.py:1);next_task ({ROUTER}:50);execute (sqlalchemy/orm/session.py:1) 7",
                f"m (x.py:1);next_task ({ROUTER}:50);do_execute (sqlalchemy/engine/d.py:9) 3",
                f"m (x.py:1);submit ({ROUTER}:94);_submit ({ROUTER}:108);flush (steelyard/x:2) 4",
                f"main (x.py:1);submit ({ROUTER}:94);_check ({ROUTER}:101);x (psycopg/c.py:3) 2",
                "run (threading.py:1);Checkpointer._loop (steelyard/db/checkpoint.py:70) 5",
                "run (asyncio/runners.py:118) 1",
                "not a sample line",
            ]
        )
    )
    rows = {part: (n, layers) for part, n, layers in breakdown(stacks)}
    assert rows["next"] == (10, {"SQLAlchemy": 7, "database driver": 3})
    assert rows["submit: write"] == (4, {"Steelyard": 4})
    # The read half of a submit is told apart though it runs under the submit handler.
    assert rows["submit: check (read)"] == (2, {"database driver": 2})
    assert rows["WAL checkpointer"] == (5, {"Steelyard": 5})
    assert rows["other (HTTP, middleware, event loop)"] == (
        1,
        {"event loop (waiting for sockets)": 1},
    )
