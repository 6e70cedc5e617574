"""AppTest helpers for the Build page's drag-and-drop board: what it shows, and the events a browser sends it."""

from __future__ import annotations

import itertools
import json

from streamlit.testing.v1 import AppTest

NONCES = itertools.count()


def board_stack(at: AppTest) -> list[str]:
    """The labels of the stack the drag-and-drop board shows (its arguments, as the browser gets them)."""
    [board] = [e for e in at.get("component_instance") if e.proto.component_name == "ui.dnd.model_dnd"]
    return [item["label"] for item in json.loads(board.proto.json_args)["stacks"][0]["items"]]


def send_event(at: AppTest, action: str, **fields) -> None:
    """Hand the board the value a browser sends for one drop (ui.dnd.Event, with a fresh nonce)."""
    at.session_state["model_dnd"] = {"nonce": f"drop-{next(NONCES)}", "action": action, **fields}
    at.run()
    assert not at.exception, at.exception


def simulate_drop(at: AppTest, stack: list[str], palette_item: str | None = None) -> None:
    """The drops that turn the top-level stack into ``stack`` (its labels after them, the palette item by name)."""
    labels = dict(zip(board_stack(at), [layer.id for layer in at.session_state["design"].layers], strict=True))
    for label, layer_id in labels.items():
        if label not in stack:
            send_event(at, "remove", id=layer_id)
    for index, layer_id in enumerate(labels[label] for label in stack if label in labels):
        if [layer.id for layer in at.session_state["design"].layers].index(layer_id) != index:
            send_event(at, "move", id=layer_id, parent=None, stack="layers", index=index)
    if palette_item is not None:
        send_event(
            at, "add", type=palette_item, kind="layer", parent=None, stack="layers", index=stack.index(palette_item)
        )
