//! The capability graph: formats are nodes, the pairs plugins declare are edges weighted by
//! cost. A route is the cheapest path (fewest steps on equal cost, then plugin names, so the
//! choice is stable); when no single plugin converts a pair, routes chain several.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use metamorph_plugin_api::FormatName;

/// Longest route considered, in steps.
pub const MAX_STEPS: usize = 4;

/// One edge: a plugin's pair.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    /// Index of the plugin in the catalog.
    pub plugin: usize,
    /// The plugin's name (for stable ordering).
    pub plugin_name: String,
    /// Format read.
    pub source: FormatName,
    /// Format written.
    pub target: FormatName,
    /// Cost.
    pub cost: u32,
}

/// The graph of every loaded plugin's pairs.
#[derive(Debug, Default)]
pub struct Graph {
    from: HashMap<FormatName, Vec<Edge>>,
}

/// A path's rank: cheaper, then shorter, then by plugin names.
type Rank = (u64, usize, Vec<String>);

impl Graph {
    /// Builds the graph from edges.
    pub fn new(edges: impl IntoIterator<Item = Edge>) -> Self {
        let mut from: HashMap<FormatName, Vec<Edge>> = HashMap::new();
        for edge in edges {
            from.entry(edge.source.clone()).or_default().push(edge);
        }
        for edges in from.values_mut() {
            edges.sort_by(|a, b| {
                (a.cost, &a.plugin_name, &a.target).cmp(&(b.cost, &b.plugin_name, &b.target))
            });
        }
        Self { from }
    }

    /// Every edge, grouped by source.
    pub fn edges(&self) -> impl Iterator<Item = &Edge> {
        self.from.values().flatten()
    }

    /// The cheapest route from `source` to `target`. A format to itself is only ever one
    /// step (a plugin that rewrites a format, such as page extraction of a PDF).
    pub fn route(&self, source: &FormatName, target: &FormatName) -> Option<Vec<Edge>> {
        if source == target {
            return self
                .from
                .get(source)?
                .iter()
                .find(|edge| edge.target == *target)
                .map(|edge| vec![edge.clone()]);
        }
        self.routes_from(source).remove(target)
    }

    /// The cheapest route from `source` to every format reachable from it (Dijkstra: the
    /// first time a format leaves the queue, it has its best route).
    pub fn routes_from(&self, source: &FormatName) -> BTreeMap<FormatName, Vec<Edge>> {
        let mut best: BTreeMap<FormatName, Vec<Edge>> = BTreeMap::new();
        let mut queue: BinaryHeap<Reverse<(Rank, FormatName, Vec<Edge>)>> = BinaryHeap::new();
        queue.push(Reverse(((0, 0, Vec::new()), source.clone(), Vec::new())));
        while let Some(Reverse((rank, node, path))) = queue.pop() {
            if node != *source {
                if best.contains_key(&node) {
                    continue;
                }
                best.insert(node.clone(), path.clone());
            }
            if path.len() >= MAX_STEPS {
                continue;
            }
            for edge in self.from.get(&node).into_iter().flatten() {
                let revisits =
                    edge.target == *source || path.iter().any(|step| step.source == edge.target);
                if revisits || best.contains_key(&edge.target) {
                    continue;
                }
                let mut next = path.clone();
                next.push(edge.clone());
                let mut names = rank.2.clone();
                names.push(edge.plugin_name.clone());
                queue.push(Reverse((
                    (rank.0 + u64::from(edge.cost), next.len(), names),
                    edge.target.clone(),
                    next,
                )));
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(plugin: &str, source: &str, target: &str, cost: u32) -> Edge {
        Edge {
            plugin: 0,
            plugin_name: plugin.to_owned(),
            source: FormatName::parse(source).unwrap(),
            target: FormatName::parse(target).unwrap(),
            cost,
        }
    }

    fn names(route: &[Edge]) -> Vec<String> {
        route
            .iter()
            .map(|edge| format!("{}:{}→{}", edge.plugin_name, edge.source, edge.target))
            .collect()
    }

    #[test]
    fn the_cheapest_route_wins_and_chains_plugins_when_needed() {
        let graph = Graph::new([
            edge("image", "tif", "png", 10),
            edge("image", "tif", "jpg", 12),
            edge("document", "png", "pdf", 20),
            edge("document", "jpg", "pdf", 5),
            edge("slow", "tif", "pdf", 100),
        ]);
        let tif = FormatName::parse("tif").unwrap();
        let pdf = FormatName::parse("pdf").unwrap();
        assert_eq!(
            names(&graph.route(&tif, &pdf).unwrap()),
            ["image:tif→jpg", "document:jpg→pdf"]
        );
        let png = FormatName::parse("png").unwrap();
        assert_eq!(
            names(&graph.route(&png, &pdf).unwrap()),
            ["document:png→pdf"]
        );
        assert!(graph.route(&pdf, &tif).is_none());
    }

    #[test]
    fn equal_costs_prefer_fewer_steps_then_plugin_names() {
        let graph = Graph::new([
            edge("b", "a", "c", 10),
            edge("a", "a", "b", 5),
            edge("a", "b", "c", 5),
            edge("z", "a", "d", 1),
            edge("y", "a", "d", 1),
        ]);
        let a = FormatName::parse("a").unwrap();
        assert_eq!(
            names(&graph.route(&a, &FormatName::parse("c").unwrap()).unwrap()),
            ["b:a→c"]
        );
        assert_eq!(
            names(&graph.route(&a, &FormatName::parse("d").unwrap()).unwrap()),
            ["y:a→d"]
        );
    }

    #[test]
    fn a_format_to_itself_is_one_step_and_cycles_are_not_followed() {
        let graph = Graph::new([
            edge("doc", "pdf", "pdf", 3),
            edge("x", "pdf", "txt", 1),
            edge("x", "txt", "pdf", 1),
        ]);
        let pdf = FormatName::parse("pdf").unwrap();
        assert_eq!(names(&graph.route(&pdf, &pdf).unwrap()), ["doc:pdf→pdf"]);
        let reachable = graph.routes_from(&pdf);
        assert_eq!(reachable.len(), 1, "{reachable:?}");
    }

    #[test]
    fn routes_longer_than_the_limit_are_not_planned() {
        let chain: Vec<Edge> = (0..6)
            .map(|i| edge("p", &format!("f{i}"), &format!("f{}", i + 1), 1))
            .collect();
        let graph = Graph::new(chain);
        let start = FormatName::parse("f0").unwrap();
        assert!(
            graph
                .route(&start, &FormatName::parse("f4").unwrap())
                .is_some()
        );
        assert!(
            graph
                .route(&start, &FormatName::parse("f5").unwrap())
                .is_none()
        );
    }
}
