"""``bindcore search``: top-k cross-modal retrieval over embeddings saved by ``bindcore embed``."""

from __future__ import annotations

import json
from typing import Any

import click


def _parse_query(value: str) -> tuple[str, str]:
    modality, sep, item = value.partition("=")
    if not sep or not modality.strip() or not item:
        raise click.BadParameter(f"{value!r} is not MODALITY=ITEM (e.g. text='a dog barking')", param_hint="--query")
    return modality.strip(), item


def _labels(records: list[dict[str, Any]], count: int) -> list[str]:
    """Row → what it is (the input from the index, else the row number)."""
    labels = [f"row {i}" for i in range(count)]
    for record in records:
        if record.get("row") is not None:
            labels[record["row"]] = str(record.get("input", labels[record["row"]]))
    return labels


def register(cli: click.Group) -> None:
    @cli.command("search")
    @click.argument("corpus", type=click.Path(exists=True, dir_okay=False))
    @click.option("--query", "-q", "queries", multiple=True, metavar="MODALITY=ITEM",
                  help="A query to embed, e.g. text='a dog' or audio=bark.wav (repeatable; needs --model).")
    @click.option("--query-embeddings", type=click.Path(exists=True, dir_okay=False),
                  help="Use saved embeddings (.npy/.safetensors from `bindcore embed`) as the queries.")
    @click.option("--compose", is_flag=True,
                  help="Combine all --query items into one query (normalise, weight, sum), as in the paper.")
    @click.option("--weight", "weights", multiple=True, type=float,
                  help="Weight of each --query in --compose (default 1 each; negative subtracts).")
    @click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False),
                  help="Saved weights for embedding --query items (a `bindcore convert` output directory).")
    @click.option("--corpus-index", type=click.Path(dir_okay=False), help="Index of CORPUS (default: .jsonl twin).")
    @click.option("-k", "--top-k", "k", type=click.IntRange(min=1), default=5, show_default=True)
    @click.option("--device", default="cpu", show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
    def search_command(corpus: str, queries: tuple[str, ...], query_embeddings: str | None, compose: bool,
                       weights: tuple[float, ...], model_dir: str | None, corpus_index: str | None, k: int,
                       device: str, as_json: bool) -> None:
        """Rank the rows of CORPUS by cosine similarity to each query; print the top K with scores."""
        from bindcore.errors import BindcoreError
        from bindcore.inference import compose as compose_embeddings
        from bindcore.inference import load_embeddings, top_k

        if bool(queries) == bool(query_embeddings):
            raise click.UsageError("give either --query items or --query-embeddings")
        if weights and not compose:
            raise click.UsageError("--weight only applies with --compose")
        try:
            corpus_emb, corpus_records = load_embeddings(corpus, corpus_index)
            if query_embeddings:
                query_emb, query_records = load_embeddings(query_embeddings)
                query_labels = _labels(query_records, query_emb.shape[0])
            else:
                parsed = [_parse_query(q) for q in queries]
                query_emb = _embed_queries(parsed, model_dir, device)
                query_labels = [f"{m}={item}" for m, item in parsed]
            if compose:
                query_emb = compose_embeddings(*query_emb, weights=list(weights) or None)[None]
                query_labels = [" + ".join(query_labels)]
            scores, indices = top_k(query_emb, corpus_emb, k)
        except BindcoreError as error:
            raise click.ClickException(str(error)) from None
        labels = _labels(corpus_records, corpus_emb.shape[0])
        results = [
            {"query": label, "results": [{"rank": r + 1, "row": int(i), "input": labels[int(i)], "score": float(s)}
                                         for r, (s, i) in enumerate(zip(row_s, row_i, strict=True))]}
            for label, row_s, row_i in zip(query_labels, scores.tolist(), indices.tolist(), strict=True)
        ]
        if as_json:
            click.echo(json.dumps(results, indent=2, ensure_ascii=False))
            return
        for result in results:
            click.echo(f"query: {result['query']}")
            for hit in result["results"]:
                click.echo(f"  {hit['rank']:>3}  {hit['score']:+.4f}  {hit['input']}")


def _embed_queries(parsed: list[tuple[str, str]], model_dir: str | None, device: str) -> Any:
    """Embed each (modality, item) query with only the modalities the queries use; rows keep query order."""
    import torch

    from bindcore.commands.embed import build_model

    names = list(dict.fromkeys(m for m, _ in parsed))
    model = build_model(names, model_dir, {}, device, "float32", batch_size=32)
    rows = [model.embed({m: [item]})[m][0].float().cpu() for m, item in parsed]
    return torch.stack(rows)
