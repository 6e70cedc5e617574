"""Issue 14's drag-and-drop failures and issue 8's block editing, in a real browser, on the project's own board.

Each failure seen with streamlit-sortables has a test here: the first stack item dragged to the trash (a React
crash there), a slow drag of LeNet's Flatten onto the trash (a reorder there), a quick drop (lost there), a drop
below the last item and the containers' geometry during a drag, an item far down a long palette group, and a drop
into a nested stack. Then the block flows: a Residual built by drag and drop and run, wrap and unwrap, and LeNet
built from an empty stack by dragging, with its actions counted.

Run: ``BUILDER_REQUIRE_BROWSER=1 python -m pytest -q tests/browser/test_dnd_browser.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect
from test_builder_browser import (
    BOARD,
    SEED_STACK,
    board,
    container,
    drag,
    item,
    items,
    shot,
    url_design,
    wait_idle,
    wait_stack,
)

from builder.design import Design, design_from_dict
from builder.examples import load_example
from builder.share import encode_design

pytestmark = pytest.mark.browser

LENET = load_example("lenet")
LENET_STACK = [
    "1 · Conv2d(1, 6, 5, padding=2)",
    "2 · Sigmoid()",
    "3 · AvgPool2d(2, stride=2)",
    "4 · Conv2d(6, 16, 5)",
    "5 · Sigmoid()",
    "6 · AvgPool2d(2, stride=2)",
    "7 · Flatten()",
    "8 · Linear(400, 120)",
    "9 · Sigmoid()",
    "10 · Linear(120, 84)",
    "11 · Sigmoid()",
    "12 · Linear(84, 10)",
]
RESIDUAL = design_from_dict(
    {
        "version": 2,
        "name": "one-residual",
        "input": {"shape": [1, 8, 16, 16]},
        "layers": [
            {"type": "Conv2d", "params": {"in_channels": 8, "out_channels": 16, "kernel_size": 3, "padding": 1}},
            {
                "type": "Residual",
                "label": "res1",
                "body": [{"type": "BatchNorm2d", "params": {"num_features": 16}}, {"type": "ReLU"}],
            },
            {"type": "Flatten"},
        ],
    }
)
GRAPH_SVG = "iframe[title='ui.graph_view.graph_view'] >> internal:control=enter-frame >> #canvas svg"


# ---------------------------------------------------------------- helpers


def open_board(page: Page, design: Design | None = None) -> None:
    """The Build page with the board drawn (and ``design`` loaded through the URL)."""
    query = "?design=" + encode_design(design) if design is not None else ""
    page.goto(page.app_url + "/" + query)  # type: ignore[attr-defined]
    wait_idle(page)
    container(page, "Model stack").wait_for()


def types(page: Page) -> list[str]:
    return [layer.type for layer in url_design(page).layers]


def wait_design(page: Page, check: Callable[[Design], bool], timeout: float = 20.0) -> Design:
    """Wait until the URL's design passes ``check`` (the URL is written at the end of each run)."""
    deadline = time.monotonic() + timeout
    design = url_design(page)
    while time.monotonic() < deadline:
        design = url_design(page)
        if check(design):
            wait_idle(page)
            return url_design(page)
        time.sleep(0.1)
    shot(page, "dnd-failed-wait")
    raise AssertionError(
        f"the design never passed the check: {[layer.type for layer in design.layers]}; the board shows "
        f"{items(page, 'Model stack')}, saying {status(page)!r}"
    )


def status(page: Page) -> str:
    return board(page).locator("#status").inner_text()


def boxes(page: Page) -> list[tuple[int, ...]]:
    """Where the palette, the stacks, the trash and the breadcrumb are, to the pixel."""
    frame = board(page)
    targets = [frame.locator("#palette"), frame.locator("#stacks"), frame.locator("#trash"), frame.locator("#crumbs")]
    return [
        tuple(round(box[k]) for k in ("x", "y", "width", "height")) for box in map(lambda t: t.bounding_box(), targets)
    ]


def press(page: Page, source) -> None:
    """Press on an item and start dragging it (SortableJS starts after a few pixels)."""
    page.locator(BOARD).scroll_into_view_if_needed()
    source.scroll_into_view_if_needed()
    box = source.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 6, y + 6, steps=3)


def quick_drag(page: Page, source, target) -> None:
    """Press, one jump to the target, release: faster than SortableJS's 50 ms look at what is under the pointer."""
    box, goal = source.bounding_box(), target.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(goal["x"] + goal["width"] / 2, goal["y"] + goal["height"] / 2, steps=2)
    page.mouse.up()


def graph_texts(page: Page) -> list[str]:
    return page.locator(f"{GRAPH_SVG} text").all_text_contents()


# ---------------------------------------------------------------- issue 14: each failure seen before


def test_trashing_the_first_item_removes_it(page: Page):
    open_board(page)
    drag(page, item(page, "Model stack", SEED_STACK[0]), container(page, "Trash"))
    wait_stack(page, ["1 · ReLU()", "2 · LazyLinear(10)"])
    assert "Error" not in board(page).locator("body").inner_text()
    assert types(page) == ["ReLU", "LazyLinear"]
    drag(page, item(page, "Model stack", "1 · ReLU()"), container(page, "Trash"))
    wait_stack(page, ["1 · LazyLinear(10)"])
    shot(page, "dnd-00-first-trashed")


def test_a_slow_drag_of_lenets_flatten_onto_the_trash_deletes_it_and_nothing_else(page: Page):
    open_board(page, LENET)
    assert items(page, "Model stack") == LENET_STACK
    drag(page, item(page, "Model stack", "7 · Flatten()"), container(page, "Trash"), steps=90)
    lenet = [layer.type for layer in LENET.layers]
    design = wait_design(page, lambda d: len(d.layers) == 11)
    assert [layer.type for layer in design.layers] == lenet[:6] + lenet[7:]
    assert [layer.id for layer in design.layers] == [layer.id for layer in LENET.layers if layer.id != "layer-7"]
    shot(page, "dnd-01-lenet-flatten-trashed")


def test_a_quick_drag_is_applied_where_it_is_released(page: Page):
    open_board(page, LENET)
    quick_drag(page, item(page, "Model stack", "4 · Conv2d(6, 16, 5)"), container(page, "Trash"))
    design = wait_design(page, lambda d: len(d.layers) == 11)
    assert "layer-4" not in [layer.id for layer in design.layers]
    quick_drag(page, item(page, "Palette", "Linear"), item(page, "Model stack", "1 · Conv2d(1, 6, 5, padding=2)"))
    design = wait_design(page, lambda d: len(d.layers) == 12)
    assert design.layers[0].type == "Linear", "dropped on the first item's middle: it goes before it"


def test_the_board_holds_still_during_a_drag_and_a_drop_below_the_last_item_appends(page: Page):
    open_board(page, LENET)
    before = boxes(page)
    press(page, item(page, "Model stack", "3 · AvgPool2d(2, stride=2)"))
    trash = container(page, "Trash").bounding_box()
    page.mouse.move(trash["x"] + trash["width"] / 2, trash["y"] + trash["height"] / 2, steps=25)
    expect(board(page).locator("#trash.over")).to_have_count(1)
    assert boxes(page) == before, "nothing moves or resizes under the pointer"
    stack = container(page, "Model stack").bounding_box()
    below = stack["y"] + stack["height"] - 20  # the empty room under the last item
    page.mouse.move(stack["x"] + stack["width"] / 2, below, steps=25)
    page.mouse.move(stack["x"] + stack["width"] / 2, below + 1)
    ghost = board(page).locator(".stack .list > .drop-ghost")
    expect(ghost).to_be_visible()
    last = board(page).locator(".stack .list > .item").last
    assert last.get_attribute("class").count("drop-ghost"), "the indicator stands after the last item"
    assert boxes(page) == before
    shot(page, "dnd-02-indicator-below-the-last-item")
    page.mouse.up()
    design = wait_design(page, lambda d: d.layers[-1].id == "layer-3")
    assert [layer.type for layer in design.layers][-2:] == ["Linear", "AvgPool2d"]

    drag(page, item(page, "Palette", "Linear"), container(page, "Model stack"), target_y=stack["height"] - 20)
    design = wait_design(page, lambda d: len(d.layers) == 13)
    assert design.layers[-1].type == "Linear", "a palette item dropped in the room below the last item is appended"


def test_a_drop_that_is_not_an_edit_changes_nothing_and_says_so(page: Page):
    open_board(page, LENET)
    drag(page, item(page, "Palette", "Linear"), container(page, "Trash"))
    expect(board(page).locator("#status")).to_contain_text("Palette items stay in the palette")
    drag(page, item(page, "Model stack", "2 · Sigmoid()"), container(page, "Palette"))
    expect(board(page).locator("#status")).to_contain_text("Dropped outside the stacks: nothing changed")
    drag(page, item(page, "Model stack", "2 · Sigmoid()"), item(page, "Model stack", "2 · Sigmoid()"))
    wait_idle(page)
    assert items(page, "Model stack") == LENET_STACK
    assert url_design(page).layers == LENET.layers


def test_an_item_far_down_a_long_group_is_reachable(page: Page):
    page.set_viewport_size({"width": 1400, "height": 1000})
    open_board(page)
    page.locator("[data-testid='stSelectbox']").filter(has_text="Group").click()
    page.get_by_role("option", name="Activation").click()
    wait_idle(page)
    palette = container(page, "Palette")
    expect(palette.locator(".group[data-group='Activation'] .item")).to_have_count(28)
    box = palette.bounding_box()
    assert box["y"] + box["height"] < 1000, "the palette scrolls inside itself, within the window"
    sigmoid = item(page, "Palette", "Sigmoid")
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(12):  # a user's mouse wheel, over the palette
        inside = sigmoid.bounding_box()
        if box["y"] <= inside["y"] and inside["y"] + inside["height"] <= box["y"] + box["height"]:
            break
        page.mouse.wheel(0, 150)
        page.wait_for_timeout(100)
    drag(
        page,
        sigmoid,
        container(page, "Model stack"),
        target_y=container(page, "Model stack").bounding_box()["height"] - 20,
    )
    wait_stack(page, [*SEED_STACK, "4 · Sigmoid()"])
    shot(page, "dnd-03-far-down-a-long-group")


def test_a_drop_into_a_residual_blocks_body_out_through_the_breadcrumb_and_in_on_the_block(page: Page):
    open_board(page, RESIDUAL)
    item(page, "Model stack", '2 · Residual block "res1" (2 entries)').click()
    wait_stack(page, ["1 · BatchNorm2d(16)", "2 · ReLU()"], header="body")
    body, shortcut = container(page, "body").bounding_box(), container(page, "shortcut").bounding_box()
    assert body["x"] + body["width"] <= shortcut["x"] and abs(body["y"] - shortcut["y"]) < 2, "side by side"
    expect(board(page).locator("#crumbs")).to_have_text("Model›res1 (Residual)merged by add")
    shot(page, "dnd-04-residual-open")

    drag(page, item(page, "Palette", "Linear"), item(page, "body", "2 · ReLU()"))
    wait_stack(page, ["1 · BatchNorm2d(16)", "2 · Linear(16, 10)", "3 · ReLU()"], header="body")
    block = url_design(page).layers[1]
    assert [layer.type for layer in block.body] == ["BatchNorm2d", "Linear", "ReLU"]
    assert block.body[1].params["in_features"] == 16, "fitted to the (1, 16, 16, 16) the body's layer receives"

    drag(page, item(page, "body", "2 · Linear(16, 10)"), container(page, "shortcut"))
    wait_stack(page, ["1 · Linear(16, 10)"], header="shortcut")
    drag(page, item(page, "shortcut", "1 · Linear(16, 10)"), board(page).locator(".crumb", has_text="Model"))
    wait_stack(page, [], header="shortcut")
    assert types(page) == ["Conv2d", "Residual", "Linear", "Flatten"], "moved out, right after the block"

    board(page).locator(".crumb", has_text="Model").click()
    wait_stack(
        page,
        [
            "1 · Conv2d(8, 16, 3, padding=1)",
            '2 · Residual block "res1" (2 entries)',
            "3 · Linear(16, 10)",
            "4 · Flatten()",
        ],
    )
    shot(page, "dnd-05-back-to-the-model")

    drag(
        page,
        item(page, "Model stack", "4 · Flatten()"),
        item(page, "Model stack", '2 · Residual block "res1" (2 entries)'),
    )
    wait_stack(page, ["1 · Conv2d(8, 16, 3, padding=1)", '2 · Residual block "res1" (3 entries)', "3 · Linear(16, 10)"])
    assert [layer.type for layer in url_design(page).layers[1].body] == ["BatchNorm2d", "ReLU", "Flatten"], (
        "dropped on the block's middle: into its body, at the end"
    )


# ---------------------------------------------------------------- issue 8: blocks by drag and drop


def test_build_a_residual_block_run_it_see_its_merge_then_wrap_and_unwrap(page: Page):
    open_board(page)
    drag(page, item(page, "Palette", "Residual"), item(page, "Model stack", "3 · LazyLinear(10)"))
    wait_stack(page, ["1 · LazyLinear(256)", "2 · ReLU()", "3 · Residual block (1 entry)", "4 · LazyLinear(10)"])
    item(page, "Model stack", "3 · Residual block (1 entry)").click()
    wait_stack(page, ["1 · Identity()"], header="body")
    drag(page, item(page, "Palette", "Linear"), item(page, "body", "1 · Identity()"))
    wait_stack(page, ["1 · Linear(256, 10)", "2 · Identity()"], header="body")
    field = page.locator("[data-testid='stNumberInput']").filter(has_text="out_features").locator("input")
    field.fill("256")
    field.press("Enter")
    wait_stack(page, ["1 · Linear(256, 256)", "2 · Identity()"], header="body")
    drag(page, item(page, "body", "2 · Identity()"), container(page, "Trash"))
    wait_stack(page, ["1 · Linear(256, 256)"], header="body")

    page.get_by_role("button", name="Run dummy forward pass").click()
    expect(page.get_by_text("Output shape (2, 10): every layer ran.")).to_be_visible()
    wanted, deadline = {"+ add", "(2, 256)", "(2, 10)"}, time.monotonic() + 30
    while not wanted <= set(graph_texts(page)) and time.monotonic() < deadline:  # the graph fills in as it plays
        time.sleep(0.2)
    assert wanted <= set(graph_texts(page)), graph_texts(page)
    shot(page, "dnd-06-residual-run")

    board(page).locator(".crumb", has_text="Model").click()
    wait_stack(page, ["1 · LazyLinear(256)", "2 · ReLU()", "3 · Residual block (1 entry)", "4 · LazyLinear(10)"])
    item(page, "Model stack", "1 · LazyLinear(256)").click()
    wait_idle(page)
    item(page, "Model stack", "2 · ReLU()").click(modifiers=["Shift"])
    expect(board(page).locator(".item.marked")).to_have_count(2)
    page.get_by_role("button", name="Sequential", exact=True).click()
    wait_stack(page, ["1 · Sequential block (2 entries)", "2 · Residual block (1 entry)", "3 · LazyLinear(10)"])
    assert [layer.type for layer in url_design(page).layers[0].layers] == ["LazyLinear", "ReLU"]
    shot(page, "dnd-07-wrapped")
    page.get_by_role("button", name="Unwrap").click()
    wait_stack(page, ["1 · LazyLinear(256)", "2 · ReLU()", "3 · Residual block (1 entry)", "4 · LazyLinear(10)"])
    page.get_by_role("button", name="Undo").click()
    wait_stack(page, ["1 · Sequential block (2 entries)", "2 · Residual block (1 entry)", "3 · LazyLinear(10)"])


# ---------------------------------------------------------------- issue 14's done-when: LeNet by dragging


class Actions:
    """A user's actions, counted: each drag, click and typed value is one."""

    def __init__(self, page: Page) -> None:
        self.page, self.count = page, 0

    def drag(self, source, target, **options) -> None:
        self.count += 1
        drag(self.page, source, target, **options)

    def click(self, locator) -> None:
        self.count += 1
        locator.click()

    def type(self, locator, text: str) -> None:
        """Type into a field and press Enter."""
        self.count += 1
        locator.fill(text)
        locator.press("Enter")


def test_lenet_from_an_empty_stack_by_dragging_only_in_about_forty_actions(page: Page):
    page.set_viewport_size({"width": 1400, "height": 1000})
    open_board(page)
    act = Actions(page)
    act.click(page.locator("[data-testid='stSelectbox']").filter(has_text="Input preset"))
    act.click(page.get_by_role("option", name="MNIST (1, 1, 28, 28)"))
    wait_design(page, lambda d: d.input.shape == (1, 1, 28, 28))
    for left in reversed(range(len(SEED_STACK))):
        act.drag(board(page).locator(".stack .item").first, container(page, "Trash"))
        wait_design(page, lambda d, n=left: len(d.layers) == n)
    wait_stack(page, [])
    search = page.get_by_label("Search layers")

    def end():
        return {"target_y": container(page, "Model stack").bounding_box()["height"] - 20}

    def add(name: str, count: int, **fields: str) -> None:
        """Drag ``name`` to the end of the stack, then type its fields (the new layer is selected)."""
        act.drag(item(page, "Palette", name), container(page, "Model stack"), **end())
        wait_design(page, lambda d: len(d.layers) == count and d.layers[-1].type == name)
        for field, value in fields.items():
            box = page.locator("[data-testid='stNumberInput'], [data-testid='stTextInput']").filter(has_text=field)
            act.type(box.locator("input"), value)
            wait_design(page, lambda d, f=field, v=value: str(d.layers[-1].params.get(f)) == v)

    act.type(search, "conv2d")
    add("Conv2d", 1, out_channels="6", kernel_size="5", padding="2")
    act.type(search, "sigmoid")
    add("Sigmoid", 2)
    act.type(search, "avgpool2d")
    add("AvgPool2d", 3, kernel_size="2", stride="2")
    act.type(search, "")
    add("Conv2d", 4, out_channels="16", kernel_size="5")
    add("Sigmoid", 5)
    add("AvgPool2d", 6, kernel_size="2", stride="2")
    act.type(search, "flatten")
    add("Flatten", 7)
    act.type(search, "linear")
    add("Linear", 8, out_features="120")
    act.type(search, "")
    add("Sigmoid", 9)
    add("Linear", 10, out_features="84")
    add("Sigmoid", 11)
    add("Linear", 12)
    act.click(page.get_by_role("button", name="Run dummy forward pass"))
    expect(page.get_by_text("Output shape (1, 10): every layer ran.")).to_be_visible()
    built = url_design(page)
    assert [(layer.type, layer.params) for layer in built.layers] == [
        (layer.type, layer.params) for layer in LENET.layers
    ], "the book's LeNet, argument for argument"
    expect(page.locator(".bt-stat-value").filter(has_text="61.7 K")).to_be_visible()
    shot(page, "dnd-08-lenet-by-dragging")
    assert act.count <= 40, f"{act.count} actions"
    print(f"LeNet from an empty stack: {act.count} actions")
