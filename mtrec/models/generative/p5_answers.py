"""How a P5 answers: trie-constrained beam decoding, and the full ranking of every item.

:meth:`P5.generate_items <mtrec.models.generative.p5.P5.generate_items>` and
:meth:`P5.scores <mtrec.models.generative.p5.P5.scores>` call these functions; the model
(:mod:`mtrec.models.generative.p5`) holds the T5, the tokenizer, the codebook and the trie;
each function takes that model as ``model``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mtrec.checks import check_ids, check_int
from mtrec.models.generative.codes import PrefixTrie

__all__ = ["full_ranking", "generate_items"]
log = logging.getLogger(__name__)


def _beam_search(
    model: nn.Module, prompts: Sequence[str], allowed_fn, *, beams: int, max_new: int
) -> Tensor:
    enc = model.encode(prompts, model.config.max_source_len)
    device = next(model.parameters()).device
    out = model.t5.generate(
        input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device),
        num_beams=beams, num_return_sequences=beams, max_new_tokens=max_new, do_sample=False,
        prefix_allowed_tokens_fn=allowed_fn,
    )  # fmt: skip
    return out.cpu().view(len(prompts), beams, -1)  # (B, beams, Lt)


@torch.no_grad()
def generate_items(
    model: nn.Module, prompts: Sequence[str], exclude: Sequence[Sequence[int]], *, k: int = 10,
    candidates: Sequence[Sequence[int]] | None = None, explain: bool = False,
) -> tuple[list[list[int]], list[list[str]]]:  # fmt: skip
    """Beam-decode k item codes per prompt under the trie: valid items, none in ``exclude``.

    Args:
        prompts: B prompt strings.
        exclude: per prompt, item ids that must not come out (the user's history).
        candidates: per prompt, restrict decoding to these items (the choice task).
        explain: let free text follow the code (the explanation task).

    Returns:
        (B lists of k item ids in beam order, B lists of k decoded texts).
    """
    model.eval()
    if len(prompts) != len(exclude) or (candidates and len(candidates) != len(prompts)):
        raise ValueError(
            f"prompts, exclude (and candidates) need one entry per prompt, got {len(prompts)} "
            f"prompts, {len(exclude)} exclude lists"
            + (f", {len(candidates)} candidate lists" if candidates else "")
        )
    k = check_int(k, "k", min=1)
    if k > len(model.code_ids):  # beam search keeps k sequences per prompt: k = 10**6 is OOM
        raise ValueError(
            f"k={k} beams per prompt, but the catalogue holds only {len(model.code_ids)} items: "
            f"ask for k <= {len(model.code_ids)} (each prompt decodes k beams at once, and no "
            "more distinct items than the catalogue's can come out)"
        )
    exclude = _exclusions(exclude)
    if candidates:
        for c in candidates:
            model.codebook.check_known(c, "candidates")
    tries = (
        [PrefixTrie({i: model.code_ids[i] for i in c}) for c in candidates] if candidates else None
    )
    banned = [(tries[b] if tries else model.trie).banned_counts(e) for b, e in enumerate(exclude)]
    available = [  # per prompt: allowed items that are not excluded
        len(set(tries[b].codes if tries else model.code_ids) - {int(i) for i in e})
        for b, e in enumerate(exclude)
    ]
    if min(available, default=1) == 0:
        empty = [b for b, a in enumerate(available) if a == 0][:5]
        raise ValueError(
            f"nothing can be decoded for prompts {empty}: every allowed item is excluded "
            "(seen); pass fewer exclusions or more candidates"
        )
    cache: dict[tuple[int, tuple[int, ...]], Tensor] = {}
    length = model.config.code_length
    everything = torch.arange(len(model.tokenizer))

    def allowed(batch_id: int, sent: Tensor) -> Tensor:
        prefix = tuple(sent[1:].tolist())
        if len(prefix) >= length:
            return everything if explain else torch.tensor([1])
        key = (batch_id, prefix)
        if key not in cache:
            trie = tries[batch_id] if tries else model.trie
            cache[key] = torch.tensor(trie.allowed(prefix, banned[batch_id]) or [1])
        return cache[key]

    max_new = model.config.max_target_len if explain else length + 1
    out = _beam_search(model, prompts, allowed, beams=k, max_new=max_new)  # (B, k, Lt)
    items = [[_item(model, seq[1 : 1 + length]) for seq in row] for row in out.tolist()]
    texts = [model.tokenizer.batch_decode(row, skip_special_tokens=True) for row in out]
    if any(a < k for a in available):  # fewer items than beams: drop repeats and non-items
        short = sum(a < k for a in available)
        log.warning(
            "k=%d but %d prompt(s) have fewer allowed items; returning only the %s available",
            k, short, "items",
        )  # fmt: skip
        for b, row in enumerate(items):
            keep, seen = [], {int(i) for i in exclude[b]}
            for j, item in enumerate(row):
                if item != -1 and item not in seen:
                    keep.append(j)
                    seen.add(item)
            items[b] = [row[j] for j in keep]
            texts[b] = [texts[b][j] for j in keep]
    return items, texts


def _exclusions(exclude: Sequence[Sequence[int]]) -> list[list[int]]:
    """Each prompt's excluded item ids as ints; 2.7 is refused rather than read as item 2."""
    out = []
    for b, seen in enumerate(exclude):
        try:
            ids = check_ids(list(seen), f"exclude[{b}]")
        except (TypeError, ValueError, RuntimeError) as error:
            if isinstance(error, ValueError) and "integer ids" in str(error):
                raise
            raise TypeError(
                f"exclude[{b}] must be a list of integer item ids, got {str(seen)[:80]} "
                f"({error}); pass the ids the codebook was built from"
            ) from None
        out.append(ids.flatten().tolist())
    return out


def _item(model: nn.Module, code: list[int]) -> int:
    tokens = tuple(model.tokenizer.convert_ids_to_tokens(code))
    return model.codebook.items.get(tokens, -1)


@torch.no_grad()
def full_ranking(
    model: nn.Module, prompts: Sequence[str], exclude: Sequence[Sequence[int]]
) -> Tensor:
    """Log-probabilities of every item as the answer to each prompt: a full ranking.

    With one token per item, the constrained decoder's first step IS a distribution over
    items; reading it whole ranks all of them at the cost of one forward pass (beam search
    returns only the top few). With longer codes an item's score is the sum over its code
    of log p(token | prompt, earlier tokens), each step normalised over that level's tokens
    (the tokens the trie can allow there), see :meth:`_code_log_probs`. Excluded items, and
    ids that are not items, get -inf.

    Args:
        prompts: B prompt strings.
        exclude: per prompt, integer item ids to score -inf (ids that are not items, e.g.
            the padding id 0, are ignored).

    Returns:
        (B, N+1) scores indexed by item id (N = the largest item id).

    Raises:
        ValueError: an exclude list holds a fractional id, or excludes every item (its row
            would be all -inf: nothing left to rank).
    """
    model.eval()
    if len(prompts) != len(exclude):
        raise ValueError(
            f"prompts and exclude need one entry per prompt, got {len(prompts)} prompts and "
            f"{len(exclude)} exclude lists"
        )
    known = [sorted({i for i in seen if i in model.code_ids}) for seen in _exclusions(exclude)]
    full = [b for b, seen in enumerate(known) if len(seen) == len(model.code_ids)]
    if full:
        raise ValueError(
            f"exclude[{full[0]}] excludes every one of the {len(model.code_ids)} items, so row "
            f"{full[0]} of the scores would be all -inf (nothing left to rank; {len(full)} such "
            "row(s) in all); exclude fewer items, or leave out users who have seen the whole "
            "catalogue"
        )
    device = next(model.parameters()).device
    items, tokens = model.item_ids, model.item_tokens.to(device)
    enc = {k: v.to(device) for k, v in model.encode(prompts, model.config.max_source_len).items()}
    scores = torch.full((len(prompts), int(items.max()) + 1), float("-inf"))
    if model.config.code_length == 1:
        start = torch.zeros(len(prompts), 1, dtype=torch.long, device=device)
        logits = model.t5(**enc, decoder_input_ids=start, use_cache=False).logits[:, 0, tokens]
        scores[:, items] = logits.log_softmax(dim=-1).float().cpu()
    else:
        scores[:, items] = _code_log_probs(model, enc).float().cpu()
    rows = torch.repeat_interleave(torch.arange(len(known)), torch.tensor([*map(len, known)]))
    scores[rows, torch.tensor([i for seen in known for i in seen], dtype=torch.long)] = -torch.inf
    return scores


def _code_log_probs(model: nn.Module, enc: dict[str, Tensor], users_per_chunk: int = 8) -> Tensor:
    """(B, I) log-probability of every item's whole code (items in ``item_ids`` order).

    The decoder runs once per distinct code prefix (not once per item): the hidden state at
    step t depends only on the first t tokens, so the prefixes of length ``code_length - 1``
    give every step's distribution for every item.
    """

    device = enc["input_ids"].device
    length = model.config.code_length
    codes = torch.tensor([model.code_ids[int(i)] for i in model.item_ids], device=device)
    prefixes, inverse = torch.unique(codes[:, :-1], dim=0, return_inverse=True)  # (P, L-1)
    decoder_in = torch.cat([torch.zeros_like(prefixes[:, :1]), prefixes], dim=1)  # (P, L)
    levels = [torch.unique(codes[:, t]) for t in range(length)]  # tokens of each level
    weight = model.t5.lm_head.weight  # (V, D)
    tied = model.t5.config.tie_word_embeddings
    hidden_all = model.t5.encoder(**enc).last_hidden_state  # (B, Ls, D)
    out = []
    for s in range(0, len(hidden_all), users_per_chunk):
        hidden = hidden_all[s : s + users_per_chunk]
        mask = enc["attention_mask"][s : s + users_per_chunk]
        b, p = len(hidden), len(prefixes)
        dec = model.t5.decoder(
            input_ids=decoder_in.repeat(b, 1),
            encoder_hidden_states=hidden.repeat_interleave(p, dim=0),
            encoder_attention_mask=mask.repeat_interleave(p, dim=0),
            use_cache=False,  # one pass over whole prefixes: a key/value cache only costs copies
        ).last_hidden_state.view(b, p, length, -1)  # (b, P, L, D)
        if tied:
            dec = dec * (model.t5.model_dim**-0.5)
        total = torch.zeros(b, len(codes), device=device)
        for t in range(length):
            logp = (dec[:, :, t] @ weight[levels[t]].T).log_softmax(dim=-1)  # (b, P, V_t)
            column = torch.searchsorted(
                levels[t], codes[:, t].contiguous()
            )  # (I,) index within level
            total += logp[:, inverse, column]
        out.append(total)
    return torch.cat(out)
