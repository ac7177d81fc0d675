"""The generic lineage graph on both databases."""

from __future__ import annotations

from loopwise.store.lineage import Node, add_edge, edges, upstream


def test_edges_and_upstream_walk(store):
    data = Node("dataset_version", "loans/1")
    run = Node("run", "r1")
    model = Node("model_version", "credit/1")
    with store.db.write() as conn:
        add_edge(conn, run, "used", data, {"role": "train"})
        add_edge(conn, model, "produced_by", run)
        add_edge(conn, model, "produced_by", run)  # recorded once
    with store.db.read() as conn:
        out = edges(conn, run, direction="out")
        assert [(e.relation, e.dst) for e in out] == [("used", data)]
        assert out[0].properties == {"role": "train"}
        assert [e.src for e in edges(conn, run, direction="in")] == [model]
        assert len(edges(conn, run)) == 2
        assert edges(conn, run, relation="nothing") == []
    # upstream follows edges backwards: what points at this node, transitively
    with store.db.read() as conn:
        assert [e.src for e in upstream(conn, data)] == [run, model]
