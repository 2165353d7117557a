"""Turn prompt and completion fields into the text a model sees, through the chat template."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # transformers is slow to import; only the type is needed here
    from transformers import PreTrainedTokenizerBase

Message = dict[str, Any]
Text = str | list[Message]


class RenderError(ValueError):
    """A chat-message field that cannot be rendered with the tokenizer's chat template."""


def resolve_tokenizer(
    tokenizer: str | PreTrainedTokenizerBase | None,
) -> PreTrainedTokenizerBase | None:
    """A tokenizer object from a tokenizer, a model name / path, or None."""
    if tokenizer is None or not isinstance(tokenizer, str):
        return tokenizer
    # Imported here: gro_core.models pulls in torch and transformers, which validation without a
    # tokenizer never needs.
    from gro_core.models import load_tokenizer

    return load_tokenizer(tokenizer)


def _apply_template(
    tokenizer: PreTrainedTokenizerBase, messages: list[Message], *, add_generation_prompt: bool
) -> str:
    if not getattr(tokenizer, "chat_template", None):
        name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        raise RenderError(
            f"tokenizer {name!r} has no chat template, so chat-message fields cannot be rendered; "
            "use a chat model's tokenizer or plain string fields"
        )
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    if not isinstance(text, str):
        raise RenderError(f"apply_chat_template returned {type(text).__name__}, expected str")
    return text


def render_prompt(tokenizer: PreTrainedTokenizerBase, prompt: Text) -> str:
    """The text a model is given: a string as-is, a message list through the chat template
    with the generation prompt appended (so the model's turn comes next)."""
    if isinstance(prompt, str):
        return prompt
    return _apply_template(tokenizer, prompt, add_generation_prompt=True)


def _first_difference(a: str, b: str) -> int:
    """Index of the first character where `a` and `b` differ (or the shorter one's length)."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


def render_completion(
    tokenizer: PreTrainedTokenizerBase, prompt_messages: Text, completion: Text
) -> str:
    """The text a model writes after `render_prompt(tokenizer, prompt_messages)`.

    A string completion is returned as-is. A message-list completion is rendered together with
    the prompt, and the part after the rendered prompt is returned, so prompt + completion text is
    exactly what the template produces for the whole conversation. Raises RenderError when the
    prompt is a string, or the template does not render the prompt as a prefix of the whole
    (some templates rewrite earlier turns, e.g. dropping reasoning), since no suffix is then right.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(prompt_messages, str):
        raise RenderError("a chat-message completion needs a chat-message prompt, got a string")
    prefix = _apply_template(tokenizer, prompt_messages, add_generation_prompt=True)
    full = _apply_template(tokenizer, [*prompt_messages, *completion], add_generation_prompt=False)
    if not full.startswith(prefix):
        at = _first_difference(prefix, full)
        raise RenderError(
            "the chat template does not render the prompt as a prefix of prompt + completion, so "
            f"the completion text cannot be cut out (they differ at character {at}: "
            f"prompt has {prefix[at : at + 20]!r}, whole has {full[at : at + 20]!r})"
        )
    return full[len(prefix) :]
