//! A layered drawing of a state machine, computed from its ASL definition: each state a box,
//! layers going down from `StartAt` along the transitions, boxes in a layer side by side.
//!
//! Layers are longest paths over the transitions with loops broken (an edge back to a state
//! still on the depth-first path does not push its target down), so every forward
//! transition goes at least one layer down. Within a layer, states are ordered by the mean
//! position of their predecessors (one barycentre sweep), ties in definition order, which
//! keeps branches that rejoin from crossing. Only the top-level states are drawn: a
//! Parallel or Map state is one box.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Box height, the gap between layers and between boxes of a layer, the margin around all.
const BOX_HEIGHT: u32 = 40;
const LAYER_GAP: u32 = 44;
const BOX_GAP: u32 = 28;
const MARGIN: u32 = 16;
/// A box fits its name: an estimate of the label's width in the console's font.
const MIN_BOX_WIDTH: u32 = 96;
const CHAR_WIDTH: u32 = 8;
const BOX_PADDING: u32 = 28;

/// How one state leads to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum EdgeKind {
    /// `Next`.
    Next,
    /// A Choice rule's `Next`.
    Choice,
    /// A Choice state's `Default`.
    Default,
    /// A `Catch` clause's `Next`.
    Catch,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct Node {
    /// The state's name.
    pub id: String,
    /// Task, Choice, Pass, Succeed, Fail, Wait, Parallel, Map.
    #[serde(rename = "type")]
    pub state_type: String,
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub(crate) struct Edge {
    pub from: String,
    pub to: String,
    pub kind: EdgeKind,
}

/// The drawing: boxes in pixels from the top left, and the transitions between them.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct Graph {
    pub width: u32,
    pub height: u32,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

/// Why a definition cannot be drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LayoutError {
    NoStates,
    BadStart,
    UnknownTarget { from: String, to: String },
}

impl std::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayoutError::NoStates => f.write_str("the definition has no States object"),
            LayoutError::BadStart => f.write_str("StartAt names no state"),
            LayoutError::UnknownTarget { from, to } => {
                write!(f, "state {from} leads to {to}, which is not a state")
            }
        }
    }
}

/// The layered drawing of `definition` (an ASL document).
pub(crate) fn layout(definition: &Value) -> Result<Graph, LayoutError> {
    let states = definition
        .get("States")
        .and_then(Value::as_object)
        .filter(|s| !s.is_empty())
        .ok_or(LayoutError::NoStates)?;
    let names: Vec<&str> = states.keys().map(String::as_str).collect();
    let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let start = definition
        .get("StartAt")
        .and_then(Value::as_str)
        .and_then(|s| index.get(s).copied())
        .ok_or(LayoutError::BadStart)?;

    let edges = transitions(states)?;
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); names.len()];
    for e in &edges {
        let (f, t) = (index[e.from.as_str()], index[e.to.as_str()]);
        if !out[f].contains(&t) {
            out[f].push(t);
        }
    }

    let forward = forward_edges(start, &out);
    let layer = longest_path_layers(&forward, names.len());
    let rows = order_layers(&layer, &forward);

    let widths: Vec<u32> = names
        .iter()
        .map(|n| {
            let chars = u32::try_from(n.chars().count()).unwrap_or(u32::MAX / CHAR_WIDTH);
            (chars.saturating_mul(CHAR_WIDTH) + BOX_PADDING).max(MIN_BOX_WIDTH)
        })
        .collect();
    let row_width = |row: &[usize]| -> u32 {
        let boxes: u32 = row.iter().map(|&i| widths[i]).sum();
        boxes + BOX_GAP * u32::try_from(row.len().saturating_sub(1)).unwrap_or(0)
    };
    let inner = rows.iter().map(|r| row_width(r)).max().unwrap_or(0);
    let mut nodes: Vec<Option<Node>> = vec![None; names.len()];
    let mut y = MARGIN;
    for row in &rows {
        let mut x = MARGIN + (inner - row_width(row)) / 2;
        for &i in row {
            let state_type = states[names[i]]
                .get("Type")
                .and_then(Value::as_str)
                .unwrap_or("Unknown")
                .to_owned();
            nodes[i] = Some(Node {
                id: names[i].to_owned(),
                state_type,
                x,
                y,
                width: widths[i],
                height: BOX_HEIGHT,
            });
            x += widths[i] + BOX_GAP;
        }
        y += BOX_HEIGHT + LAYER_GAP;
    }
    let layers = u32::try_from(rows.len()).unwrap_or(0);
    Ok(Graph {
        width: inner + 2 * MARGIN,
        height: 2 * MARGIN + layers * BOX_HEIGHT + layers.saturating_sub(1) * LAYER_GAP,
        nodes: nodes.into_iter().flatten().collect(),
        edges,
    })
}

/// Every transition of the top-level states, in definition order, each once.
fn transitions(states: &serde_json::Map<String, Value>) -> Result<Vec<Edge>, LayoutError> {
    let mut edges: Vec<Edge> = Vec::new();
    for (name, state) in states {
        let mut add = |to: Option<&Value>, kind: EdgeKind| -> Result<(), LayoutError> {
            let Some(to) = to.and_then(Value::as_str) else {
                return Ok(());
            };
            if !states.contains_key(to) {
                return Err(LayoutError::UnknownTarget {
                    from: name.clone(),
                    to: to.to_owned(),
                });
            }
            let edge = Edge {
                from: name.clone(),
                to: to.to_owned(),
                kind,
            };
            if !edges.contains(&edge) {
                edges.push(edge);
            }
            Ok(())
        };
        add(state.get("Next"), EdgeKind::Next)?;
        for rule in state
            .get("Choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            add(rule.get("Next"), EdgeKind::Choice)?;
        }
        add(state.get("Default"), EdgeKind::Default)?;
        for catcher in state
            .get("Catch")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            add(catcher.get("Next"), EdgeKind::Catch)?;
        }
    }
    Ok(edges)
}

/// The transitions that do not close a loop: a depth-first walk from the start (then from
/// each state it did not reach, in definition order) drops the edges back to a state on
/// its current path.
fn forward_edges(start: usize, out: &[Vec<usize>]) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let n = out.len();
    let mut mark = vec![Mark::New; n];
    let mut forward: Vec<Vec<usize>> = vec![Vec::new(); n];
    let roots = std::iter::once(start).chain(0..n);
    for root in roots {
        if mark[root] != Mark::New {
            continue;
        }
        // An explicit stack of (state, next edge to look at): no recursion on user input.
        let mut stack = vec![(root, 0usize)];
        mark[root] = Mark::OnPath;
        while let Some(top) = stack.last_mut() {
            let v = top.0;
            if let Some(&w) = out[v].get(top.1) {
                top.1 += 1;
                match mark[w] {
                    Mark::OnPath => {}
                    Mark::Done => forward[v].push(w),
                    Mark::New => {
                        forward[v].push(w);
                        mark[w] = Mark::OnPath;
                        stack.push((w, 0));
                    }
                }
            } else {
                mark[v] = Mark::Done;
                stack.pop();
            }
        }
    }
    forward
}

/// Each state's layer: the length of the longest forward path reaching it.
fn longest_path_layers(forward: &[Vec<usize>], n: usize) -> Vec<usize> {
    let mut indegree = vec![0usize; n];
    for targets in forward {
        for &t in targets {
            indegree[t] += 1;
        }
    }
    let mut ready: Vec<usize> = (0..n).rev().filter(|&v| indegree[v] == 0).collect();
    let mut layer = vec![0usize; n];
    while let Some(v) = ready.pop() {
        for &t in &forward[v] {
            layer[t] = layer[t].max(layer[v] + 1);
            indegree[t] -= 1;
            if indegree[t] == 0 {
                ready.push(t);
            }
        }
    }
    layer
}

/// The states of each layer, left to right.
fn order_layers(layer: &[usize], forward: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let depth = layer.iter().copied().max().map_or(0, |m| m + 1);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); depth];
    for (v, &l) in layer.iter().enumerate() {
        rows[l].push(v);
    }
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); layer.len()];
    for (v, targets) in forward.iter().enumerate() {
        for &t in targets {
            preds[t].push(v);
        }
    }
    let mut position = vec![0f64; layer.len()];
    for row in &mut rows {
        let key = |v: usize| -> f64 {
            let p = &preds[v];
            if p.is_empty() {
                f64::MAX
            } else {
                p.iter().map(|&u| position[u]).sum::<f64>() / p.len() as f64
            }
        };
        let mut keyed: Vec<(f64, usize)> = row.iter().map(|&v| (key(v), v)).collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        *row = keyed.into_iter().map(|(_, v)| v).collect();
        for (i, &v) in row.iter().enumerate() {
            position[v] = i as f64;
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pipeline() -> Graph {
        let def: Value =
            serde_json::from_str(docpipe_core::PIPELINE_DEFINITION).expect("definition is JSON");
        layout(&def).expect("the pipeline lays out")
    }

    fn node<'a>(g: &'a Graph, id: &str) -> &'a Node {
        g.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no box for {id}"))
    }

    fn overlap(a: &Node, b: &Node) -> bool {
        a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height
    }

    fn assert_well_formed(def: &Value, g: &Graph) {
        let states = def["States"].as_object().expect("states");
        assert_eq!(g.nodes.len(), states.len(), "one box per state");
        for name in states.keys() {
            let n = node(g, name);
            assert_eq!(
                n.state_type,
                states[name]["Type"].as_str().unwrap_or("Unknown")
            );
            assert!(
                n.x + n.width <= g.width && n.y + n.height <= g.height,
                "{n:?} inside"
            );
        }
        for (i, a) in g.nodes.iter().enumerate() {
            for b in &g.nodes[i + 1..] {
                assert!(!overlap(a, b), "{} overlaps {}", a.id, b.id);
            }
        }
        for e in &g.edges {
            assert!(
                states.contains_key(&e.from) && states.contains_key(&e.to),
                "{e:?}"
            );
        }
    }

    #[test]
    fn the_pipeline_has_a_box_per_state_none_overlapping() {
        let def: Value = serde_json::from_str(docpipe_core::PIPELINE_DEFINITION).expect("JSON");
        let g = pipeline();
        assert_well_formed(&def, &g);
        assert_eq!(g.nodes.first().map(|n| n.id.as_str()), Some("Ingest"));
    }

    #[test]
    fn layers_go_down_along_every_transition_of_the_pipeline() {
        let g = pipeline();
        for e in &g.edges {
            assert!(
                node(&g, &e.to).y > node(&g, &e.from).y,
                "{} -> {} ({:?}) goes down",
                e.from,
                e.to,
                e.kind
            );
        }
    }

    #[test]
    fn transitions_are_named_by_kind() {
        let g = pipeline();
        let has = |from: &str, to: &str, kind| {
            g.edges
                .iter()
                .any(|e| e.from == from && e.to == to && e.kind == kind)
        };
        assert!(has("Ingest", "RouteByKind", EdgeKind::Next));
        assert!(has("RouteByKind", "ExtractBlueprint", EdgeKind::Choice));
        assert!(has("RouteByKind", "Ocr", EdgeKind::Default));
        assert!(has("Ocr", "RecordFailure", EdgeKind::Catch));
        assert!(has("Ocr", "Cancelled", EdgeKind::Catch));
        // Two catchers to one state are one edge.
        let ocr_catch = g
            .edges
            .iter()
            .filter(|e| e.from == "Ocr" && e.to == "RecordFailure")
            .count();
        assert_eq!(ocr_catch, 1);
    }

    #[test]
    fn a_loop_is_drawn_with_its_back_edge_going_up() {
        let def = json!({"StartAt": "A", "States": {
            "A": {"Type": "Task", "Resource": "r", "Next": "B"},
            "B": {"Type": "Choice", "Choices": [{"Variable": "$.x", "BooleanEquals": true, "Next": "A"}], "Default": "C"},
            "C": {"Type": "Succeed"},
            "Orphan": {"Type": "Pass", "End": true}
        }});
        let g = layout(&def).expect("lays out");
        assert_well_formed(&def, &g);
        assert!(node(&g, "B").y > node(&g, "A").y);
        assert!(node(&g, "C").y > node(&g, "B").y);
        // The state nothing reaches still gets a box.
        node(&g, "Orphan");
    }

    #[test]
    fn a_wide_layer_keeps_its_boxes_apart() {
        let mut states = serde_json::Map::new();
        let choices: Vec<Value> = (0..12)
            .map(|i| json!({"Variable": "$.k", "NumericEquals": i, "Next": format!("Branch{i}")}))
            .collect();
        states.insert(
            "Route".into(),
            json!({"Type": "Choice", "Choices": choices, "Default": "End"}),
        );
        for i in 0..12 {
            states.insert(format!("Branch{i}"), json!({"Type": "Pass", "Next": "End"}));
        }
        states.insert("End".into(), json!({"Type": "Succeed"}));
        let def = json!({"StartAt": "Route", "States": states});
        let g = layout(&def).expect("lays out");
        assert_well_formed(&def, &g);
        assert_eq!(node(&g, "Branch0").y, node(&g, "Branch11").y);
    }

    /// Random definitions of up to 24 states, each with a `Next`, Choice rules, a
    /// `Default` and `Catch`es to random states; with `forward_only`, only to later states.
    fn definition(forward_only: bool) -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        (1usize..24).prop_flat_map(move |n| {
            let target = move |i: usize| {
                if forward_only {
                    (i + 1..n + 1).boxed()
                } else {
                    (0..n + 1).boxed()
                }
            };
            let state = move |i: usize| {
                (
                    target(i),
                    proptest::collection::vec(target(i), 0..3),
                    proptest::collection::vec(target(i), 0..2),
                    0u8..4,
                )
            };
            (0..n)
                .map(state)
                .collect::<Vec<_>>()
                .prop_map(move |specs| {
                    let name = |t: usize| {
                        if t >= n {
                            "End".to_owned()
                        } else {
                            format!("S{t}-{}", "x".repeat(t % 7))
                        }
                    };
                    let mut states = serde_json::Map::new();
                    for (i, (next, choices, catches, shape)) in specs.into_iter().enumerate() {
                        let catch: Vec<Value> = catches
                            .iter()
                            .map(|&t| json!({"ErrorEquals": ["States.ALL"], "Next": name(t)}))
                            .collect();
                        let state = if shape == 0 && !choices.is_empty() {
                            let rules: Vec<Value> = choices
                                .iter()
                                .map(|&t| json!({"Variable": "$.x", "IsPresent": true, "Next": name(t)}))
                                .collect();
                            json!({"Type": "Choice", "Choices": rules, "Default": name(next)})
                        } else {
                            json!({"Type": "Task", "Resource": "r", "Next": name(next), "Catch": catch})
                        };
                        states.insert(name(i), state);
                    }
                    states.insert("End".into(), json!({"Type": "Succeed"}));
                    json!({"StartAt": name(0), "States": states})
                })
        })
    }

    fn proptest_config() -> proptest::test_runner::Config {
        proptest::test_runner::Config {
            cases: 64,
            failure_persistence: None,
            ..proptest::test_runner::Config::default()
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest_config())]

        #[test]
        fn any_definition_gets_apart_boxes_for_every_state(def in definition(false)) {
            let g = layout(&def).expect("lays out");
            assert_well_formed(&def, &g);
        }

        #[test]
        fn without_loops_every_transition_goes_down(def in definition(true)) {
            let g = layout(&def).expect("lays out");
            assert_well_formed(&def, &g);
            for e in &g.edges {
                assert!(node(&g, &e.to).y > node(&g, &e.from).y, "{e:?} in {def}");
            }
        }
    }

    #[test]
    fn broken_definitions_are_refused() {
        assert_eq!(layout(&json!({"StartAt": "A"})), Err(LayoutError::NoStates));
        assert_eq!(
            layout(&json!({"StartAt": "B", "States": {"A": {"Type": "Succeed"}}})),
            Err(LayoutError::BadStart)
        );
        assert!(matches!(
            layout(&json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Z"}}})),
            Err(LayoutError::UnknownTarget { .. })
        ));
    }
}
