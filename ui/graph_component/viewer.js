// The model graph viewer: an SVG laid out on the server by Graphviz's dot, shown with pan, zoom, fit and fullscreen.
//
// It speaks Streamlit's component protocol (version 1) by hand: "streamlit:componentReady" once, then a
// "streamlit:render" message with the arguments on every rerun; it answers with "streamlit:setFrameHeight" and,
// when a layer is clicked, "streamlit:setComponentValue" ({node, path, at}).
//
// The SVG is untrusted: it is parsed as XML (parsing runs nothing) and rebuilt from an allowlist of the elements
// and attributes a Graphviz graph uses. Scripts, foreign objects, styles, images, links, event handlers,
// references (href, url(...)) and ids are dropped; a tooltip link keeps only its text, as a <title>.
(function () {
  "use strict";

  const SVG_NS = "http://www.w3.org/2000/svg";
  const XLINK_NS = "http://www.w3.org/1999/xlink";
  const ELEMENTS = new Set([
    "svg", "g", "title", "desc", "polygon", "polyline", "path", "ellipse", "circle", "rect", "line", "text", "tspan",
  ]);
  const TEXT_ELEMENTS = new Set(["title", "desc", "text", "tspan"]);
  const ATTRIBUTES = new Set([
    "class", "transform", "viewBox", "width", "height", "points", "d", "cx", "cy", "r", "rx", "ry", "x", "y",
    "x1", "y1", "x2", "y2", "dx", "dy", "fill", "stroke", "stroke-width", "stroke-dasharray", "stroke-opacity",
    "fill-opacity", "opacity", "font-family", "font-size", "font-weight", "font-style", "text-anchor",
    "text-decoration", "preserveAspectRatio",
  ]);
  const UNSAFE_VALUE = /url\s*\(|javascript:|data:|[<>]/i;
  const PAD = 12; // pixels around the graph in the view
  const MIN_VIEW_HEIGHT = 160;
  const ZOOM_STEP = 1.25;
  const MAX_SCALE = 4;
  const DRAG_THRESHOLD = 4; // pixels a press may move and still count as a click

  const viewer = document.getElementById("viewer");
  const viewport = document.getElementById("viewport");
  const canvas = document.getElementById("canvas");
  const statusText = document.getElementById("status");
  const help = document.getElementById("help");
  const zoomLevel = document.getElementById("zoom-level");
  const fullscreenButton = document.getElementById("fullscreen");
  const failingButton = document.getElementById("to-failing");

  const view = { scale: 1, x: PAD, y: PAD };
  let graph = null; // {svg, width, height, nodes: Map(name -> g), edges: [{g, head}]}
  let svgText = null;
  let maxViewHeight = 640;
  let userMoved = false; // once the user pans or zooms, new graphs keep their view instead of being fitted
  let selected = null;
  let layerNodes = new Set();
  let animation = { id: null, timer: null };
  let lastHeight = 0;
  let problem = ""; // why the last SVG could not be shown
  let failing = null; // the node (or block) of the layer the run failed at, shown by its button

  // ------------------------------------------------------------ Streamlit's component protocol

  function send(type, data) {
    window.parent.postMessage(Object.assign({ isStreamlitMessage: true, type: type }, data), "*");
  }

  window.addEventListener("message", function (event) {
    if (event.source !== window.parent || !event.data || event.data.type !== "streamlit:render") return;
    render(event.data.args || {}, event.data.theme);
  });

  // ------------------------------------------------------------ the untrusted SVG, rebuilt from an allowlist

  function sanitize(text) {
    const parsed = new DOMParser().parseFromString(text, "image/svg+xml");
    const root = parsed.documentElement;
    if (!root || root.namespaceURI !== SVG_NS || root.localName !== "svg" || parsed.querySelector("parsererror")) {
      throw new Error("the graph is not an SVG image");
    }
    return copyElement(root);
  }

  function copyElement(source) {
    const element = document.createElementNS(SVG_NS, source.localName);
    for (const attribute of Array.from(source.attributes)) {
      if (attribute.namespaceURI === null && ATTRIBUTES.has(attribute.localName) && !UNSAFE_VALUE.test(attribute.value)) {
        element.setAttribute(attribute.localName, attribute.value);
      }
    }
    copyChildren(source, element);
    return element;
  }

  function copyChildren(source, target) {
    for (const child of Array.from(source.childNodes)) {
      if (child.nodeType === Node.TEXT_NODE) {
        if (TEXT_ELEMENTS.has(target.localName)) target.appendChild(document.createTextNode(child.data));
      } else if (child.nodeType === Node.ELEMENT_NODE && child.namespaceURI === SVG_NS) {
        if (ELEMENTS.has(child.localName)) {
          target.appendChild(copyElement(child));
        } else if (child.localName === "a") {
          // Graphviz wraps a node with a tooltip in <a xlink:title="...">: keep its shapes and the tooltip's text.
          const tooltip = child.getAttributeNS(XLINK_NS, "title");
          if (tooltip) {
            const title = document.createElementNS(SVG_NS, "title");
            title.textContent = tooltip;
            target.appendChild(title);
          }
          copyChildren(child, target);
        }
      }
    }
  }

  function ownTitle(g) {
    const title = Array.from(g.children).find(function (child) { return child.localName === "title"; });
    return title ? title.textContent : "";
  }

  // A node or a block's cluster by its DOT name: "layer-5", "layer-5/layers/0/body/1", "cluster_layer-5".
  function nameOf(g) {
    const title = ownTitle(g);
    return g.classList.contains("cluster") ? title.replace(/^cluster_/, "") : title;
  }

  // The top-level entry a node belongs to: a block's inner nodes are named after it ("layer-5/...").
  function topOf(name) {
    return name.split("/")[0];
  }

  function indexGraph(svg) {
    const nodes = new Map();
    const clusters = new Map();
    const edges = [];
    for (const g of svg.querySelectorAll("g.node")) nodes.set(nameOf(g), g);
    for (const g of svg.querySelectorAll("g.cluster")) clusters.set(nameOf(g), g);
    for (const g of svg.querySelectorAll("g.edge")) {
      const name = ownTitle(g);
      const arrow = name.lastIndexOf("->");
      edges.push({ g: g, head: arrow >= 0 ? name.slice(arrow + 2) : "" });
    }
    return { nodes: nodes, clusters: clusters, edges: edges };
  }

  function showSvg(text) {
    let svg;
    try {
      svg = sanitize(text);
    } catch (error) {
      canvas.replaceChildren();
      graph = null;
      problem = "The graph could not be shown: " + error.message;
      return;
    }
    problem = "";
    canvas.replaceChildren(svg);
    const box = { width: svg.width.baseVal.value, height: svg.height.baseVal.value };
    svg.setAttribute("width", box.width);
    svg.setAttribute("height", box.height);
    graph = Object.assign({ svg: svg, width: box.width, height: box.height }, indexGraph(svg));
    viewer.dataset.nodes = String(graph.nodes.size);
  }

  // ------------------------------------------------------------ the view: scale and offset, fitted or the user's

  function viewSize() {
    return { width: viewport.clientWidth, height: viewport.clientHeight };
  }

  function fitWidthScale(width) {
    if (!(width > 2 * PAD)) return 1; // not laid out yet (hidden until ready): the resize that follows refits
    return Math.min(1, Math.max(0.01, (width - 2 * PAD) / graph.width));
  }

  function minScale() {
    const size = viewSize();
    const whole = Math.min((size.width - 2 * PAD) / graph.width, (size.height - 2 * PAD) / graph.height);
    return Math.max(0.005, Math.min(0.25, whole));
  }

  function clampAxis(position, content, room) {
    const low = Math.min(PAD, room - content - PAD);
    const high = Math.max(PAD, room - content - PAD);
    return Math.min(high, Math.max(low, position));
  }

  function apply() {
    if (!graph) return;
    const size = viewSize();
    view.x = clampAxis(view.x, graph.width * view.scale, size.width);
    view.y = clampAxis(view.y, graph.height * view.scale, size.height);
    canvas.style.transform = "translate(" + view.x + "px, " + view.y + "px) scale(" + view.scale + ")";
    zoomLevel.textContent = Math.round(view.scale * 100) + "%";
    viewer.dataset.scale = view.scale.toFixed(4);
  }

  // A graph taller than the view starts at its top (the input); a shorter one is centred.
  function center(scale) {
    const size = viewSize();
    const height = graph.height * scale;
    view.scale = scale;
    view.x = (size.width - graph.width * scale) / 2;
    view.y = height + 2 * PAD > size.height ? PAD : (size.height - height) / 2;
    apply();
  }

  function fitWidth() {
    if (!graph) return;
    userMoved = false;
    center(fitWidthScale(viewSize().width));
  }

  function fitAll() {
    if (!graph) return;
    userMoved = true;
    const size = viewSize();
    const scale = Math.min(1, (size.width - 2 * PAD) / graph.width, (size.height - 2 * PAD) / graph.height);
    if (!(scale > 0)) return;
    center(Math.max(0.005, scale));
  }

  function zoomAt(factor, px, py) {
    if (!graph) return;
    const scale = Math.min(MAX_SCALE, Math.max(minScale(), view.scale * factor));
    view.x = px - ((px - view.x) * scale) / view.scale;
    view.y = py - ((py - view.y) * scale) / view.scale;
    view.scale = scale;
    userMoved = true;
    apply();
  }

  function zoomCentered(factor) {
    const size = viewSize();
    zoomAt(factor, size.width / 2, size.height / 2);
  }

  function panBy(dx, dy) {
    const before = { x: view.x, y: view.y };
    view.x += dx;
    view.y += dy;
    apply();
    const moved = view.x !== before.x || view.y !== before.y;
    if (moved) userMoved = true;
    return moved;
  }

  // The view moves (zoomed in to at least the width's fit) so that the node is in its middle: a failing layer 140
  // layers down a long graph is not left below the view.
  function shapeOf(name) {
    return (graph && (graph.nodes.get(name) || graph.clusters.get(name))) || null;
  }

  function showNode(name) {
    const g = shapeOf(name);
    if (!g) return false;
    const size = viewSize();
    const box = g.getBoundingClientRect();
    const origin = canvas.getBoundingClientRect();
    const scale = Math.max(view.scale, fitWidthScale(size.width));
    const cx = (box.left + box.width / 2 - origin.left) / view.scale;
    const cy = (box.top + box.height / 2 - origin.top) / view.scale;
    view.scale = scale;
    view.x = size.width / 2 - cx * scale;
    view.y = size.height / 2 - cy * scale;
    userMoved = true;
    apply();
    return true;
  }

  // The view's height follows the graph (fitted to the width) up to a cap; a longer graph scrolls inside it.
  function resizeFrame() {
    if (document.fullscreenElement) return;
    let height = MIN_VIEW_HEIGHT;
    if (graph) {
      const scale = fitWidthScale(viewport.clientWidth);
      height = Math.min(maxViewHeight, Math.max(MIN_VIEW_HEIGHT, Math.ceil(graph.height * scale + 2 * PAD)));
    }
    viewport.style.height = height + "px";
    const frameHeight = Math.ceil(viewer.getBoundingClientRect().height);
    if (frameHeight !== lastHeight) {
      lastHeight = frameHeight;
      send("streamlit:setFrameHeight", { height: frameHeight });
    }
  }

  function refit() {
    resizeFrame();
    if (!graph) return;
    if (userMoved) apply();
    else fitWidth();
  }

  // ------------------------------------------------------------ selection and the layer-by-layer animation

  function markNodes() {
    if (!graph) return;
    for (const shapes of [graph.nodes, graph.clusters]) {
      for (const [name, g] of shapes) {
        g.classList.toggle("layer", layerNodes.has(topOf(name)));
        g.classList.toggle("selected", name === selected);
      }
    }
  }

  function setStatus(text) {
    statusText.textContent = text || problem;
    statusText.title = statusText.textContent;
  }

  function stopAnimation() {
    if (animation.timer !== null) clearTimeout(animation.timer);
    animation.timer = null;
    if (graph) {
      for (const g of graph.svg.querySelectorAll("g.pending")) g.classList.remove("pending");
    }
    viewer.dataset.state = graph ? "ready" : "empty";
    setStatus("");
  }

  // Layers still to come are faint; each frame reveals a few (their incoming edges with them), the first at once.
  function play(spec) {
    stopAnimation();
    const frames = Array.isArray(spec.frames) ? spec.frames.filter(Array.isArray) : [];
    if (!graph || !frames.length) return;
    const pending = new Set(frames.flat());
    const total = Array.from(pending).filter(function (name) { return layerNodes.has(name); }).length;
    let frame = 0;
    let done = 0;
    const step = function () {
      for (const name of frames[frame]) {
        if (pending.delete(name) && layerNodes.has(name)) done += 1;
      }
      for (const shapes of [graph.nodes, graph.clusters]) {
        for (const [name, g] of shapes) g.classList.toggle("pending", pending.has(topOf(name)));
      }
      for (const edge of graph.edges) edge.g.classList.toggle("pending", pending.has(topOf(edge.head)));
      frame += 1;
      if (frame >= frames.length) {
        stopAnimation();
        return;
      }
      setStatus("Layer " + done + " of " + total);
      animation.timer = setTimeout(step, Math.max(0, Number(spec.step_ms) || 0));
    };
    viewer.dataset.state = "animating";
    step();
  }

  // ------------------------------------------------------------ one render message

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
    if (typeof theme.textColor === "string") style.setProperty("--border", "color-mix(in srgb, " + theme.textColor + " 20%, transparent)");
    document.documentElement.classList.toggle("dark", theme.base === "dark");
    viewer.dataset.theme = theme.base === "dark" ? "dark" : "light";
  }

  function render(args, theme) {
    applyTheme(theme);
    maxViewHeight = Number(args.max_height) || maxViewHeight;
    const hint = typeof args.hint === "string" ? args.hint : "";
    help.title = hint;
    help.setAttribute("aria-label", hint);
    layerNodes = new Set(Array.isArray(args.layers) ? args.layers : []);
    selected = typeof args.selected === "string" ? args.selected : null;
    const spec = args.animation && typeof args.animation === "object" ? args.animation : null;
    const replay = spec !== null && spec.id !== animation.id;
    if (typeof args.svg === "string" && args.svg !== svgText) {
      svgText = args.svg;
      stopAnimation();
      showSvg(svgText);
      refit();
    }
    markNodes();
    const failed = typeof args.failing === "string" && shapeOf(args.failing) ? args.failing : null;
    failingButton.hidden = failed === null;
    if (failed !== null && failed !== failing) showNode(failed); // a new failure: the view goes to it once
    failing = failed;
    if (replay) {
      animation.id = spec.id;
      play(spec);
    } else if (animation.timer === null) {
      viewer.dataset.state = graph ? "ready" : "empty";
      setStatus("");
    }
  }

  // ------------------------------------------------------------ pointer, wheel, keys, buttons

  let press = null; // {id, x, y, viewX, viewY, node, dragging}

  viewport.addEventListener("pointerdown", function (event) {
    if (event.button !== 0 || !graph) return;
    const node = event.target.closest ? event.target.closest("g.node, g.cluster") : null;
    press = { id: event.pointerId, x: event.clientX, y: event.clientY, viewX: view.x, viewY: view.y, node: node, dragging: false };
    viewport.setPointerCapture(event.pointerId);
  });

  viewport.addEventListener("pointermove", function (event) {
    if (!press || event.pointerId !== press.id) return;
    const dx = event.clientX - press.x;
    const dy = event.clientY - press.y;
    if (!press.dragging && Math.hypot(dx, dy) < DRAG_THRESHOLD) return;
    press.dragging = true;
    viewport.classList.add("dragging");
    view.x = press.viewX + dx;
    view.y = press.viewY + dy;
    userMoved = true;
    apply();
  });

  function release(event) {
    if (!press || event.pointerId !== press.id) return;
    const clicked = !press.dragging && event.type === "pointerup" ? press.node : null;
    press = null;
    viewport.classList.remove("dragging");
    if (clicked) selectNode(clicked);
  }

  viewport.addEventListener("pointerup", release);
  viewport.addEventListener("pointercancel", release);

  // A click on a layer, or on anything of a block (its outline, its label, a layer in it), selects that entry of
  // the stack; the value also names the exact node clicked.
  function selectNode(g) {
    const name = nameOf(g);
    const top = topOf(name);
    if (!layerNodes.has(top)) return;
    selected = top;
    markNodes();
    send("streamlit:setComponentValue", { value: { node: top, path: name, at: Date.now() }, dataType: "json" });
  }

  // Ctrl (or Cmd, or a trackpad pinch) + wheel zooms at the pointer; the plain wheel pans a graph taller than the
  // view and, once it reaches an end, scrolls the page as usual.
  viewport.addEventListener("wheel", function (event) {
    if (!graph) return;
    const unit = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? viewport.clientHeight : 1;
    if (event.ctrlKey || event.metaKey) {
      event.preventDefault();
      const box = viewport.getBoundingClientRect();
      zoomAt(Math.exp(-event.deltaY * unit * 0.002), event.clientX - box.left, event.clientY - box.top);
      return;
    }
    const dx = (event.shiftKey ? event.deltaY : event.deltaX) * unit;
    const dy = (event.shiftKey ? 0 : event.deltaY) * unit;
    if (panBy(-dx, -dy)) event.preventDefault();
  }, { passive: false });

  // The browser may scroll the view itself (find in page, a focused element brought into view): turn that into a
  // pan, so the transform stays the one source of where the graph is.
  viewport.addEventListener("scroll", function () {
    if (!viewport.scrollLeft && !viewport.scrollTop) return;
    view.x -= viewport.scrollLeft;
    view.y -= viewport.scrollTop;
    viewport.scrollLeft = 0;
    viewport.scrollTop = 0;
    userMoved = true;
    apply();
  });

  viewport.addEventListener("keydown", function (event) {
    const keys = {
      "+": function () { zoomCentered(ZOOM_STEP); },
      "=": function () { zoomCentered(ZOOM_STEP); },
      "-": function () { zoomCentered(1 / ZOOM_STEP); },
      "0": fitWidth,
      "1": function () { zoomCentered(1 / view.scale); },
      ArrowUp: function () { panBy(0, 60); },
      ArrowDown: function () { panBy(0, -60); },
      ArrowLeft: function () { panBy(60, 0); },
      ArrowRight: function () { panBy(-60, 0); },
    };
    const action = keys[event.key];
    if (action && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      action();
    }
  });

  document.getElementById("zoom-in").addEventListener("click", function () { zoomCentered(ZOOM_STEP); });
  document.getElementById("zoom-out").addEventListener("click", function () { zoomCentered(1 / ZOOM_STEP); });
  zoomLevel.addEventListener("click", function () { if (graph) zoomCentered(1 / view.scale); });
  document.getElementById("fit-width").addEventListener("click", fitWidth);
  document.getElementById("fit-all").addEventListener("click", fitAll);
  failingButton.addEventListener("click", function () { if (failing !== null) showNode(failing); });

  fullscreenButton.addEventListener("click", function () {
    if (document.fullscreenElement) document.exitFullscreen();
    else if (viewer.requestFullscreen) viewer.requestFullscreen().catch(function () { setStatus("Fullscreen is not allowed here"); });
  });

  document.addEventListener("fullscreenchange", function () {
    const on = document.fullscreenElement === viewer;
    fullscreenButton.setAttribute("aria-label", on ? "Leave fullscreen" : "Fullscreen");
    fullscreenButton.title = on ? "Leave fullscreen (Esc)" : "Fullscreen (Esc leaves it)";
    viewer.dataset.fullscreen = String(on);
    if (!on) lastHeight = 0;
    userMoved = false;
    requestAnimationFrame(refit);
  });

  new ResizeObserver(function () { refit(); }).observe(document.body);

  send("streamlit:componentReady", { apiVersion: 1 });
})();
