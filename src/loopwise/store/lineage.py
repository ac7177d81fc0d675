"""The lineage graph: generic edges ``(type, id) --relation--> (type, id)``.

Every recorded relation of the loop (a run used a dataset version, a run produced a model
version, a deployment served a version...) is one row of ``lineage_edges``; domain
modules name the types and relations, this module only stores and walks them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from loopwise.clock import now_us, to_datetime
from loopwise.store.tables import lineage_edges
from loopwise.store.upsert import insert_on_conflict


@dataclass(frozen=True)
class Node:
    """One entity of the graph, such as ``Node("run", "01jd...")``."""

    type: str
    id: str


@dataclass(frozen=True)
class Edge:
    """A recorded relation between two entities."""

    src: Node
    relation: str
    dst: Node
    created_at: Any
    properties: dict[str, Any]


def add_edge(
    conn: Connection,
    src: Node,
    relation: str,
    dst: Node,
    properties: Mapping[str, Any] | None = None,
) -> None:
    """Record ``src --relation--> dst`` (recording the same edge twice keeps one)."""
    insert_on_conflict(
        conn,
        lineage_edges,
        [
            {
                "src_type": src.type,
                "src_id": src.id,
                "relation": relation,
                "dst_type": dst.type,
                "dst_id": dst.id,
                "created_at": now_us(),
                "properties": json.dumps(dict(properties)) if properties else None,
            }
        ],
        keys=["src_type", "src_id", "relation", "dst_type", "dst_id"],
    )


def _edge(row: Any) -> Edge:
    return Edge(
        Node(row.src_type, row.src_id),
        row.relation,
        Node(row.dst_type, row.dst_id),
        to_datetime(row.created_at),
        json.loads(row.properties) if row.properties else {},
    )


def edges(
    conn: Connection,
    node: Node,
    *,
    direction: str = "both",
    relation: str | None = None,
) -> list[Edge]:
    """Edges leaving (``out``), entering (``in``) or touching (``both``) ``node``."""
    c = lineage_edges.c
    outgoing = and_(c.src_type == node.type, c.src_id == node.id)
    incoming = and_(c.dst_type == node.type, c.dst_id == node.id)
    where = {"out": outgoing, "in": incoming, "both": or_(outgoing, incoming)}[direction]
    query = select(lineage_edges).where(where).order_by(c.id)
    if relation is not None:
        query = query.where(c.relation == relation)
    return [_edge(row) for row in conn.execute(query)]


def upstream(conn: Connection, node: Node, *, max_depth: int = 20) -> list[Edge]:
    """Every edge reachable by walking backwards from ``node`` (what it was made from)."""
    seen: set[Node] = {node}
    frontier = [node]
    found: list[Edge] = []
    for _ in range(max_depth):
        nxt = []
        for current in frontier:
            for edge in edges(conn, current, direction="in"):
                found.append(edge)
                if edge.src not in seen:
                    seen.add(edge.src)
                    nxt.append(edge.src)
        if not nxt:
            break
        frontier = nxt
    return found
