"""Examples page: the example designs, one click to load (undo brings the previous design back)."""

from __future__ import annotations

import streamlit as st

from builder.design import Design
from builder.examples import list_examples
from builder.summary import format_shape
from ui import frame, state
from ui.text import plain

COLUMNS = 3
# What each example teaches, one line on its card (tests/test_app.py checks every shipped example has one).
TEACHES: dict[str, str] = {
    "alexnet": "Lazy convolutions infer their input channels; watch 224 x 224 shrink to 5 x 5 before the classifier.",
    "centered-layer": "A custom layer without parameters (D2L 6.5): your own forward, checked in the sandbox.",
    "convnext-block": "A ConvNeXt block: a depthwise 7 x 7 convolution, channels-last LayerNorm, in a residual.",
    "d2l-mlp": "Lazy initialization (D2L 6.4): weights stay uninitialized until the first forward pass.",
    "d2l-tied-mlp": "Tied parameters (D2L 6.2): one layer used twice, its weights shared and counted once.",
    "densenet-block": "Dense connections: a Residual concatenates its body's output with its input.",
    "googlenet": "Inception blocks: four branches side by side, concatenated along the channels.",
    "lenet": "The first CNN (D2L 7.6): convolutions, pooling, then Flatten into fully connected layers.",
    "mobilenetv2": "Inverted residuals: depthwise convolutions (groups) inside skip connections.",
    "my-linear": "A custom layer with parameters (D2L 6.5): its weight and bias count like a built-in's.",
    "resnet18": "Residual blocks with projection shortcuts where the shape changes, repeated by stage.",
    "rnn-lm": "A character RNN language model (D2L 9.6): one-hot tokens, time first, a Linear per step.",
    "se-block": "Squeeze-and-excitation: a branch that re-weights channels, merged by multiplication.",
    "text-lstm": "Token ids through an Embedding and an LSTM: integer input, sequence-shaped output.",
    "transformer-block": "Attention and a feed-forward net, each inside a residual block with LayerNorm.",
    "transformer-encoder": "torch's own TransformerEncoder: a stack of layers as one entry.",
    "vit-tiny": "A tiny Vision Transformer: patches, a class token and position embeddings, then an encoder.",
    "unet": "U-Net skips as nested Residuals that concatenate; transposed convolutions upsample back.",
}


@st.cache_data(show_spinner=False)
def examples() -> dict[str, Design]:
    """The shipped examples (read once per server)."""
    return list_examples()


def example_card(name: str, design: Design) -> bool:
    """One example: its name, input and layers, and a load button; returns True when clicked."""
    with st.container(border=True):
        st.markdown(f"**{plain(name)}**")
        st.markdown(TEACHES.get(name, "A design to explore."))
        st.caption(f"input {format_shape(design.input.shape)} {design.input.dtype} · {len(design.layers)} layers")
        types = " → ".join(layer.type for layer in design.layers[:6])
        st.text(types + (" → ..." if len(design.layers) > 6 else ""))
        if design.custom_layers:
            st.caption(plain(f"custom layers: {', '.join(design.custom_names())}"))
        return st.button(
            "Load into Build",
            key=f"load.{name}",
            icon=":material/file_open:",
            help="Replaces the design on the Build page and opens it; Undo brings yours back",
            width="stretch",
        )


def main() -> None:
    frame.start()
    st.title("Examples")
    st.caption("Load an example to explore it on the Build page; Undo (in the sidebar) brings your design back.")
    columns = st.columns(COLUMNS)
    for position, (name, design) in enumerate(examples().items()):
        with columns[position % COLUMNS]:
            if example_card(name, design):
                state.commit(design)
                state.notify("success", f"Loaded the {name} example. Undo brings your previous design back.")
                st.switch_page(frame.BUILD_PAGE)
    frame.finish()


main()
