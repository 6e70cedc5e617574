// The model stack's drag-and-drop board: a palette, the stacks on view (the model's, or an open block's), the
// breadcrumb and the trash. Dragging is SortableJS's (vendored: Sortable.min.js); what a drop means is decided here,
// from where the pointer is released, and sent to the app as one event. The app applies it or refuses it with a
// message; either way its next render is the truth, and the board is rebuilt from it.
//
// It speaks Streamlit's component protocol (version 1) by hand: "streamlit:componentReady" once, then a
// "streamlit:render" message with the arguments on every rerun; it answers with "streamlit:setFrameHeight" and,
// for each drop or click, "streamlit:setComponentValue" ({nonce, action, ...}); the app echoes the nonce of the
// last event it handled as args.ack.
(function () {
  "use strict";

  const DRAG_TOLERANCE = 4; // pixels the pointer moves before a press becomes a drag (a click selects)
  const INTO_BAND = 0.25; // a block item's top and bottom quarters place before and after it; between: inside it
  const ANSWER_TIMEOUT = 15000; // ms: without an answer by then, the board shows the app's last state again
  const CRUMB_HEIGHT = 26, TRASH_HEIGHT = 56, GAP = 6, LIST_SLACK = 48; // LIST_SLACK: room below the last item
  const HINT = "Drag from the palette into a stack, within or between stacks to move, to the trash to remove. " +
    "Click a block to open it.";

  const board = document.getElementById("board");
  const paletteBox = document.getElementById("palette");
  const crumbsBox = document.getElementById("crumbs");
  const stacksBox = document.getElementById("stacks");
  const trash = document.getElementById("trash");
  const status = document.getElementById("status");

  let latest = null; // the last arguments the app sent
  let shownPalette = ""; // JSON of the palette on view (rebuilt only when it changes: it keeps its scroll)
  let shownWork = ""; // JSON of the stacks and breadcrumb on view
  let sortables = []; // the stacks' Sortable instances
  let paletteSortables = [];
  let dragging = false;
  let draggedItem = null; // the item under way (Sortable's dragEl)
  let waiting = null; // {nonce, timer}: an event sent, not yet answered
  let gesture = null; // the press on an item: {item, x, y, started}
  let pointer = { x: 0, y: 0 };
  let counter = 0;
  let frameHeight = 0;
  let clientNote = null; // {text, refused}: a message about a drop the board itself refused

  // ------------------------------------------------------------ Streamlit's component protocol

  function post(type, data) {
    window.parent.postMessage(Object.assign({ isStreamlitMessage: true, type: type }, data), "*");
  }

  window.addEventListener("message", function (event) {
    if (event.source !== window.parent || !event.data || event.data.type !== "streamlit:render") return;
    applyTheme(event.data.theme);
    receive(event.data.args || {});
  });

  function send(event) {
    counter += 1;
    event.nonce = Date.now().toString(36) + "-" + counter;
    clearTimeout(waiting && waiting.timer);
    waiting = { nonce: event.nonce, timer: setTimeout(noAnswer, ANSWER_TIMEOUT) };
    setBusy(true);
    post("streamlit:setComponentValue", { value: event, dataType: "json" });
  }

  function noAnswer() {
    waiting = null;
    setBusy(false);
    clientNote = { text: "The app has not answered that drop yet; the board shows the model as the app last sent it.", refused: true };
    if (latest) build(latest, true);
  }

  function receive(args) {
    latest = args;
    if (waiting && args.ack === waiting.nonce) {
      clearTimeout(waiting.timer);
      waiting = null;
      clientNote = null;
      setBusy(false);
    }
    if (dragging || waiting) return; // the drop under way, or the one sent, is shown until the app answers
    build(args, false);
  }

  function applyTheme(theme) {
    if (!theme) return;
    const style = document.documentElement.style;
    const colours = {
      "--bg": theme.backgroundColor,
      "--panel": theme.secondaryBackgroundColor,
      "--text": theme.textColor,
      "--primary": theme.primaryColor,
      "--font": theme.font,
    };
    for (const [name, value] of Object.entries(colours)) {
      if (typeof value === "string" && value) style.setProperty(name, value);
    }
    if (typeof theme.textColor === "string") {
      style.setProperty("--border", "color-mix(in srgb, " + theme.textColor + " 22%, transparent)");
      style.setProperty("--muted", "color-mix(in srgb, " + theme.textColor + " 62%, transparent)");
    }
  }

  // ------------------------------------------------------------ building the board from the app's arguments

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function build(args, force) {
    const palette = JSON.stringify(args.palette || []);
    if (force || palette !== shownPalette) {
      buildPalette(args.palette || []);
      shownPalette = palette;
    }
    const work = JSON.stringify([args.crumbs, args.stacks, args.add_branch, args.note]);
    if (force || work !== shownWork) {
      buildWork(args);
      shownWork = work;
    }
    showStatus();
    board.dataset.state = "ready";
    fitHeight(args);
  }

  function buildPalette(groups) {
    const scroll = paletteBox.scrollTop;
    paletteSortables.forEach(function (s) { s.destroy(); });
    paletteSortables = [];
    paletteBox.replaceChildren();
    let count = 0;
    for (const group of groups) {
      if (!group.items || !group.items.length) continue;
      const section = element("div", "group");
      section.dataset.group = group.title;
      section.appendChild(element("div", "group-title", group.title));
      const list = element("ul", "list");
      for (const entry of group.items) {
        const item = element("li", "item" + (entry.kind === "block" ? " block" : ""));
        item.dataset.type = entry.type;
        item.dataset.kind = entry.kind;
        item.title = entry.hint || "";
        item.appendChild(element("span", "label", entry.type));
        list.appendChild(item);
        count += 1;
      }
      section.appendChild(list);
      paletteBox.appendChild(section);
      paletteSortables.push(Sortable.create(list, options({ name: "model", pull: "clone", put: false }, false)));
    }
    if (!count) paletteBox.appendChild(element("p", "empty-note", "No layer matches the search."));
    paletteBox.scrollTop = scroll;
  }

  function buildWork(args) {
    const scroll = stacksBox.scrollTop;
    sortables.forEach(function (s) { s.destroy(); });
    sortables = [];
    buildCrumbs(args.crumbs || [], args.note || "");
    stacksBox.replaceChildren();
    for (const stack of args.stacks || []) stacksBox.appendChild(buildStack(stack));
    if (args.add_branch) {
      const add = element("button", "icon-button add-branch", "+ branch");
      add.type = "button";
      add.title = "Add a branch (empty: the identity)";
      add.addEventListener("click", function () { send({ action: "add_branch", id: args.add_branch }); });
      crumbsBox.appendChild(add);
    }
    stacksBox.scrollTop = scroll;
  }

  function buildCrumbs(crumbs, note) {
    crumbsBox.replaceChildren();
    crumbs.forEach(function (crumb, position) {
      if (position) crumbsBox.appendChild(element("span", "crumb-sep", "›"));
      const button = element("button", "crumb" + (crumb.current ? " current" : "") + (crumb.drop ? " target" : ""), crumb.label);
      button.type = "button";
      button.dataset.index = String(position);
      button.title = crumb.current ? "The stacks shown below" :
        "Open " + crumb.label + "; drop an item here to move it out, after the block it is in";
      if (!crumb.current) {
        button.addEventListener("click", function () { send({ action: "open", id: crumb.open }); });
      } else {
        button.setAttribute("aria-current", "location");
      }
      crumbsBox.appendChild(button);
    });
    if (note) {
      const span = element("span", "crumb-note", note);
      span.title = note;
      crumbsBox.appendChild(span);
    }
  }

  function buildStack(stack) {
    const box = element("div", "stack");
    box.dataset.parent = stack.parent === null ? "" : stack.parent;
    box.dataset.stack = stack.stack;
    box.dataset.title = stack.title;
    const head = element("div", "stack-head");
    head.appendChild(element("span", "title-text", stack.title));
    if (stack.removable) {
      const remove = element("button", "icon-button", "×");
      remove.type = "button";
      remove.title = "Remove " + stack.title + " and what it holds";
      remove.setAttribute("aria-label", "Remove " + stack.title);
      remove.addEventListener("click", function () {
        send({ action: "remove_branch", id: stack.parent, branch: stack.branch });
      });
      head.appendChild(remove);
    }
    box.appendChild(head);
    const list = element("ul", "list");
    for (const entry of stack.items || []) list.appendChild(stackItem(entry));
    if (!(stack.items || []).length) list.appendChild(element("li", "placeholder", stack.empty || "Drop layers here"));
    box.appendChild(list);
    sortables.push(Sortable.create(list, options({ name: "model", pull: true, put: true }, true)));
    return box;
  }

  function stackItem(entry) {
    const classes = ["item"];
    if (entry.block) classes.push("block");
    if (entry.selected) classes.push("selected");
    if (entry.marked) classes.push("marked");
    if (entry.pending) classes.push("pending");
    const item = element("li", classes.join(" "));
    item.appendChild(element("span", "label", entry.label));
    if (entry.id) item.dataset.id = entry.id;
    if (entry.inner) {
      item.dataset.inner = entry.inner;
      item.dataset.count = String(entry.count || 0);
    }
    item.tabIndex = 0;
    item.title = entry.block ? "Click to open this block; drag to move it" : "Click to select; drag to move";
    if (entry.selected) item.setAttribute("aria-selected", "true");
    return item;
  }

  function options(group, sort) {
    return {
      group: group,
      sort: sort,
      draggable: ".item",
      forceFallback: true, // Sortable's own pointer tracking: the same in every browser and in tests
      fallbackOnBody: true,
      fallbackTolerance: DRAG_TOLERANCE,
      animation: 120,
      ghostClass: "drop-ghost",
      fallbackClass: "drag-image",
      emptyInsertThreshold: 24,
      scroll: true,
      scrollSensitivity: 48,
      scrollSpeed: 14,
      bubbleScroll: true,
      onStart: dragStarted,
      onMove: placeByMiddle,
      onEnd: dragEnded,
    };
  }

  // The indicator goes before an item while the pointer is above the item's middle, after it below: the same rule
  // as indexAt, so a drop lands where the indicator showed. Over a block's middle band it stays put: a drop there
  // goes into the block (targetAt).
  function placeByMiddle(evt, pointerEvent) {
    const related = evt.related;
    if (!related || !related.classList.contains("item")) return true;
    const y = pointerEvent && typeof pointerEvent.clientY === "number" ? pointerEvent.clientY : pointer.y;
    if (intoBlock(related, y, evt.dragged)) return false;
    const box = related.getBoundingClientRect();
    return y > box.top + box.height / 2 ? 1 : -1;
  }

  // Whether height y is in the middle band of a block item (not the one dragged): a drop there goes inside it.
  function intoBlock(item, y, dragged) {
    if (!item.dataset.inner || item === dragged) return false;
    const box = item.getBoundingClientRect();
    return y > box.top + box.height * INTO_BAND && y < box.bottom - box.height * INTO_BAND;
  }

  function fitHeight(args) {
    const least = Number(args.min_height) || 360, most = Number(args.max_height) || 620;
    let content = 0;
    stacksBox.querySelectorAll(".stack").forEach(function (stack) {
      // The list stretches to its box, so its own height says nothing: measure down to its last item.
      const last = stack.querySelector(".list").lastElementChild;
      const bottom = last ? last.getBoundingClientRect().bottom : stack.getBoundingClientRect().top;
      content = Math.max(content, bottom - stack.getBoundingClientRect().top + LIST_SLACK);
    });
    const wanted = CRUMB_HEIGHT + GAP + content + GAP + TRASH_HEIGHT;
    const height = Math.max(least, Math.min(most, wanted));
    document.documentElement.style.setProperty("--board-height", height + "px");
    const total = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (total !== frameHeight) {
      frameHeight = total;
      post("streamlit:setFrameHeight", { height: total });
    }
  }

  function setBusy(busy) {
    board.classList.toggle("busy", busy);
    paletteSortables.concat(sortables).forEach(function (s) { s.option("disabled", busy); });
  }

  // The board's own notes (a drop it refused); the app's refusals show on the page, below the board.
  function showStatus() {
    status.textContent = clientNote ? clientNote.text : HINT;
    status.classList.toggle("refused", Boolean(clientNote && clientNote.refused));
  }

  // ------------------------------------------------------------ where the pointer is: the drop's target

  function targetAt(x, y, dragged) {
    const hit = document.elementFromPoint(x, y); // the image under the pointer ignores the pointer (CSS)
    if (!hit) return null;
    if (hit.closest("#trash")) return { kind: "trash" };
    const crumb = hit.closest(".crumb");
    if (crumb) {
      const data = latest && latest.crumbs ? latest.crumbs[Number(crumb.dataset.index)] : null;
      return data && data.drop ? { kind: "crumb", crumb: crumb, data: data } : { kind: "here", crumb: crumb };
    }
    const block = hit.closest(".stack .item.block");
    if (block && intoBlock(block, y, dragged)) {
      return { kind: "into", item: block, parent: block.dataset.id, stack: block.dataset.inner, index: Number(block.dataset.count) };
    }
    const stack = hit.closest(".stack");
    if (stack) {
      return { kind: "stack", list: stack.querySelector(".list"), parent: stack.dataset.parent || null, stack: stack.dataset.stack, title: stack.dataset.title };
    }
    if (hit.closest(".palette")) return { kind: "palette" };
    return null;
  }

  // The position a drop at height y takes in a list: after every item whose middle is above it.
  function indexAt(list, y, dragged) {
    let index = 0;
    for (const item of list.querySelectorAll(":scope > .item")) {
      if (item === dragged || item.classList.contains("drop-ghost")) continue;
      const box = item.getBoundingClientRect();
      if (box.top + box.height / 2 < y) index += 1;
    }
    return index;
  }

  function markTarget(target) {
    trash.classList.toggle("over", Boolean(target && target.kind === "trash"));
    stacksBox.querySelectorAll(".item.into").forEach(function (item) { item.classList.remove("into"); });
    if (target && target.kind === "into") target.item.classList.add("into");
    crumbsBox.querySelectorAll(".crumb").forEach(function (crumb) {
      crumb.classList.toggle("over", Boolean(target && target.kind === "crumb" && target.crumb === crumb));
    });
    board.classList.toggle("off-list", !target || target.kind !== "stack");
  }

  // Where a mouse or touch event happened (a touch's end has its point in changedTouches).
  function pointOf(event) {
    const touch = event && (event.changedTouches || event.touches) ? (event.changedTouches || event.touches)[0] : null;
    const source = touch || event;
    return source && typeof source.clientX === "number" ? { x: source.clientX, y: source.clientY } : null;
  }

  function tracked(event) {
    pointer = pointOf(event) || pointer;
    if (dragging) markTarget(targetAt(pointer.x, pointer.y, draggedItem));
  }

  document.addEventListener("mousemove", tracked, true);
  document.addEventListener("touchmove", tracked, { capture: true, passive: true });

  // ------------------------------------------------------------ drags

  document.addEventListener("mousedown", function (event) {
    const item = event.button === 0 ? event.target.closest(".item") : null;
    if (item && waiting) {
      status.textContent = "One moment: the app is applying the last drop. Drag again once it shows.";
      status.classList.add("refused");
    }
    gesture = item && !waiting ? { item: item, x: event.clientX, y: event.clientY, started: false } : null;
  }, true);

  // A press and release further apart than a click that Sortable did not see as a drag (it starts one a tick after
  // the first move, so a very quick drag ends before): the drop is decided here all the same.
  document.addEventListener("mouseup", function (event) {
    const press = gesture;
    gesture = null;
    if (!press) return;
    const moved = Math.max(Math.abs(event.clientX - press.x), Math.abs(event.clientY - press.y)) > DRAG_TOLERANCE;
    setTimeout(function () {
      if (press.started || !moved) return;
      drop(press.item, { x: event.clientX, y: event.clientY });
    }, 0);
  }, true);

  function dragStarted(evt) {
    dragging = true;
    draggedItem = evt.item;
    if (gesture) gesture.started = true;
    clientNote = null;
    status.textContent = "Drop into a stack, on the trash, or on the breadcrumb to move out of a block.";
    status.classList.remove("refused");
    board.classList.add("dragging");
  }

  function dragEnded(evt) {
    dragging = false;
    draggedItem = null;
    board.classList.remove("dragging", "off-list");
    markTarget(null);
    drop(evt.item, pointOf(evt.originalEvent) || pointer);
  }

  // What a drop means comes from where the pointer was released, never from where Sortable last placed the item: it
  // looks under the pointer every 50 ms only, so a quick release can leave that placement stale. The indicator
  // follows the same rule (placeByMiddle), so both agree once the pointer has rested.
  function drop(item, at) {
    const source = item.dataset.id ? { id: item.dataset.id } : { type: item.dataset.type, kind: item.dataset.kind };
    const target = targetAt(at.x, at.y, item);
    const event = dropEvent(source, target, item, at);
    setTimeout(function () {
      if (event) {
        build(Object.assign({}, latest, { stacks: predicted(latest.stacks || [], event) }), true);
        send(event);
      } else if (latest) {
        build(latest, true);
      }
    }, 0);
  }

  function dropEvent(source, target, item, at) {
    const what = source.id ? "the item" : source.type;
    if (!target || target.kind === "palette") {
      refuse(source.id ? "Dropped outside the stacks: nothing changed. Drop on the trash to remove an item." :
        "Dropped outside the stacks: " + source.type + " was not added. Drop it into a stack.");
      return null;
    }
    if (target.kind === "here") {
      refuse("Dropped on the block you are in: nothing changed. Drop into one of its stacks below.");
      return null;
    }
    if (target.kind === "trash") {
      if (!source.id) {
        refuse("Palette items stay in the palette: nothing to remove.");
        return null;
      }
      return { action: "remove", id: source.id };
    }
    let place;
    if (target.kind === "crumb") {
      place = target.data.drop;
    } else if (target.kind === "into") {
      place = { parent: target.parent, stack: target.stack, index: target.index };
    } else {
      place = { parent: target.parent, stack: target.stack, index: indexAt(target.list, at.y, item) };
    }
    if (!source.id) return { action: "add", type: source.type, kind: source.kind, parent: place.parent, stack: place.stack, index: place.index };
    const from = locate(source.id);
    if (from && from.parent === place.parent && from.stack === place.stack && from.index === place.index) {
      refuse("Dropped where " + what + " already was: nothing changed.", false);
      return null;
    }
    return { action: "move", id: source.id, parent: place.parent, stack: place.stack, index: place.index };
  }

  function refuse(text, refused) {
    clientNote = { text: text, refused: refused !== false };
  }

  function locate(id) {
    for (const stack of (latest && latest.stacks) || []) {
      const index = (stack.items || []).findIndex(function (entry) { return entry.id === id; });
      if (index >= 0) return { parent: stack.parent, stack: stack.stack, index: index };
    }
    return null;
  }

  // The stacks as they will be once the app applies the event (shown, greyed, until it answers).
  function predicted(stacks, event) {
    const copy = stacks.map(function (stack) { return Object.assign({}, stack, { items: (stack.items || []).slice() }); });
    let moving = null;
    if (event.action === "remove" || event.action === "move") {
      for (const stack of copy) {
        const index = stack.items.findIndex(function (entry) { return entry.id === event.id; });
        if (index >= 0) moving = stack.items.splice(index, 1)[0];
      }
    }
    if (event.action === "add") moving = { label: event.type, block: event.kind === "block" };
    if (event.action === "add" || (event.action === "move" && moving)) {
      const into = copy.find(function (stack) { return stack.parent === event.parent && stack.stack === event.stack; });
      if (into) into.items.splice(event.index, 0, Object.assign({}, moving, { pending: true, selected: false }));
    }
    return copy;
  }

  // ------------------------------------------------------------ clicks: select, open

  stacksBox.addEventListener("click", function (event) {
    const item = event.target.closest(".item");
    if (!item || !item.dataset.id || waiting) return;
    send({ action: "select", id: item.dataset.id, extend: event.shiftKey });
  });

  stacksBox.addEventListener("keydown", function (event) {
    const item = event.target.closest(".item");
    if (!item || !item.dataset.id || waiting || (event.key !== "Enter" && event.key !== " ")) return;
    event.preventDefault();
    send({ action: "select", id: item.dataset.id, extend: event.shiftKey });
  });

  if (window.ResizeObserver) {
    new ResizeObserver(function () { if (latest && !dragging) fitHeight(latest); }).observe(document.body);
  }

  post("streamlit:componentReady", { apiVersion: 1 });
})();
