//! Tree ensembles scored without tract, for the binary layouts scikit-learn's exporter
//! (skl2onnx) writes: gradient boosting (one score of mixed sign, a base value,
//! `LOGISTIC`), random forests (class 1's probability as the one score, no transform),
//! and votes for both classes without transform.
//!
//! tract 0.23 walks a tree ensemble's leaves with an iterator it skips from the start for
//! every tree of every row: 40 trees of depth 3 cost about 150 µs a row, 300 times
//! onnxruntime. Here each tree is an array of nodes and each leaf knows its votes, so a
//! row costs one walk from root to leaf per tree. Any other layout (more classes, another
//! transform, base values where onnxruntime's binary rules are unclear) stays with tract;
//! the fixtures of tests/models prove the first two layouts against onnxruntime.

use std::collections::HashMap;

use tract_onnx::pb::{AttributeProto, GraphProto, NodeProto};

/// A node of a tree: a comparison with two children, or a leaf with its votes.
#[derive(Debug, Clone, Copy)]
enum Node {
    Branch {
        feature: u32,
        mode: Mode,
        threshold: f32,
        when_true: u32,
        when_false: u32,
    },
    /// Votes `votes[start..end]`.
    Leaf { start: u32, end: u32 },
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
}

impl Mode {
    fn parse(mode: &[u8]) -> Option<Mode> {
        Some(match mode {
            b"BRANCH_LEQ" => Mode::Leq,
            b"BRANCH_LT" => Mode::Lt,
            b"BRANCH_GTE" => Mode::Gte,
            b"BRANCH_GT" => Mode::Gt,
            b"BRANCH_EQ" => Mode::Eq,
            b"BRANCH_NEQ" => Mode::Neq,
            _ => return None,
        })
    }

    fn holds(self, value: f32, threshold: f32) -> bool {
        match self {
            Mode::Leq => value <= threshold,
            Mode::Lt => value < threshold,
            Mode::Gte => value >= threshold,
            Mode::Gt => value > threshold,
            Mode::Eq => value == threshold,
            Mode::Neq => value != threshold,
        }
    }
}

/// How the class-1 probability comes from the sums of the votes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Output {
    /// `sigmoid(sum of class 0's votes + base)`: onnxruntime's binary case with one
    /// score of mixed sign under `LOGISTIC`.
    Logistic { base: f32 },
    /// The sum of class 1's votes (plus its base value).
    Votes { base: f32 },
    /// The sum of the only score's votes (of positive weights).
    Single,
}

/// A binary tree ensemble classifier, ready to score rows.
#[derive(Debug, Clone)]
pub struct Forest {
    nodes: Vec<Node>,
    roots: Vec<u32>,
    /// (class, weight) of every leaf, leaf by leaf.
    votes: Vec<(u8, f32)>,
    output: Output,
    /// The widest feature index read, to refuse rows too short.
    width: usize,
}

fn attribute<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn ints(node: &NodeProto, name: &str) -> Vec<i64> {
    attribute(node, name)
        .map(|a| a.ints.clone())
        .unwrap_or_default()
}

fn floats(node: &NodeProto, name: &str) -> Vec<f32> {
    attribute(node, name)
        .map(|a| a.floats.clone())
        .unwrap_or_default()
}

impl Forest {
    /// The forest of a graph that is one `TreeEnsembleClassifier` on the input whose
    /// probabilities are the output (through `Identity` nodes only), in a layout scored
    /// here; `None` leaves the graph to tract.
    pub fn of_graph(graph: &GraphProto) -> Option<Forest> {
        let [output] = &graph.output[..] else {
            return None;
        };
        let [input] = &graph.input[..] else {
            return None;
        };
        let mut name = output.name.as_str();
        let by_output: HashMap<&str, &NodeProto> = graph
            .node
            .iter()
            .flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n)))
            .collect();
        loop {
            let node = by_output.get(name)?;
            match (node.domain.as_str(), node.op_type.as_str()) {
                ("", "Identity") => name = node.input.first()?,
                ("ai.onnx.ml", "TreeEnsembleClassifier")
                    if node.output.get(1).is_some_and(|o| o == name)
                        && node.input.first() == Some(&input.name) =>
                {
                    return Forest::of_node(node);
                }
                _ => return None,
            }
        }
    }

    fn of_node(node: &NodeProto) -> Option<Forest> {
        let labels = attribute(node, "classlabels_int64s")
            .map(|a| a.ints.len())
            .or_else(|| attribute(node, "classlabels_strings").map(|a| a.strings.len()))?;
        if labels != 2
            || node
                .attribute
                .iter()
                .any(|a| a.name.ends_with("_as_tensor"))
        {
            return None;
        }
        let transform = attribute(node, "post_transform")
            .map(|a| a.s.as_slice())
            .unwrap_or(b"NONE");
        let base = floats(node, "base_values");
        let class_ids = ints(node, "class_ids");
        let weights = floats(node, "class_weights");
        let only_class_zero = class_ids.iter().all(|c| *c == 0);
        let output = match (transform, only_class_zero) {
            // With positive weights only, onnxruntime reads one score another way.
            (b"LOGISTIC", true) if weights.iter().any(|w| *w < 0.0) && base.len() <= 2 => {
                Output::Logistic {
                    base: base.first().copied().unwrap_or(0.0),
                }
            }
            (b"NONE", false) if base.is_empty() || base.len() == 2 => Output::Votes {
                base: base.get(1).copied().unwrap_or(0.0),
            },
            // Random forests: class 1's probability stored as class 0's only score, read
            // by onnxruntime as [1 - score, score].
            (b"NONE", true) if base.is_empty() && weights.iter().all(|w| *w >= 0.0) => {
                Output::Single
            }
            _ => return None,
        };
        let tree_ids = ints(node, "nodes_treeids");
        let node_ids = ints(node, "nodes_nodeids");
        let features = ints(node, "nodes_featureids");
        let thresholds = floats(node, "nodes_values");
        let modes = &attribute(node, "nodes_modes")?.strings;
        let true_ids = ints(node, "nodes_truenodeids");
        let false_ids = ints(node, "nodes_falsenodeids");
        let count = tree_ids.len();
        if [
            node_ids.len(),
            features.len(),
            thresholds.len(),
            modes.len(),
            true_ids.len(),
            false_ids.len(),
        ]
        .iter()
        .any(|n| *n != count)
        {
            return None;
        }
        // Node (tree, id) -> index in `nodes`.
        let index: HashMap<(i64, i64), u32> = tree_ids
            .iter()
            .zip(&node_ids)
            .enumerate()
            .map(|(i, (t, n))| ((*t, *n), i as u32))
            .collect();
        if index.len() != count {
            return None;
        }
        // Votes grouped by leaf, in node order.
        let mut leaf_votes: HashMap<u32, Vec<(u8, f32)>> = HashMap::new();
        let (vote_trees, vote_nodes) = (ints(node, "class_treeids"), ints(node, "class_nodeids"));
        if vote_trees.len() != class_ids.len()
            || vote_nodes.len() != class_ids.len()
            || weights.len() != class_ids.len()
        {
            return None;
        }
        for (((tree, id), class), weight) in vote_trees
            .iter()
            .zip(&vote_nodes)
            .zip(&class_ids)
            .zip(&weights)
        {
            let at = *index.get(&(*tree, *id))?;
            let class = u8::try_from(*class).ok().filter(|c| *c < 2)?;
            leaf_votes.entry(at).or_default().push((class, *weight));
        }
        let mut nodes = Vec::with_capacity(count);
        let mut votes = Vec::new();
        let mut width = 0;
        for i in 0..count {
            let mode = modes[i].as_slice();
            if mode == b"LEAF" {
                let start = votes.len() as u32;
                votes.extend(leaf_votes.remove(&(i as u32)).unwrap_or_default());
                nodes.push(Node::Leaf {
                    start,
                    end: votes.len() as u32,
                });
                continue;
            }
            let child = |id: i64| index.get(&(tree_ids[i], id)).copied();
            let feature = u32::try_from(features[i]).ok()?;
            width = width.max(feature as usize + 1);
            nodes.push(Node::Branch {
                feature,
                mode: Mode::parse(mode)?,
                threshold: thresholds[i],
                when_true: child(true_ids[i])?,
                when_false: child(false_ids[i])?,
            });
        }
        // Votes on a branch are not a layout exporters write.
        if !leaf_votes.is_empty() {
            return None;
        }
        // A tree's root is its node no other node of it points to.
        let mut children = vec![false; count];
        for node in &nodes {
            if let Node::Branch {
                when_true,
                when_false,
                ..
            } = node
            {
                children[*when_true as usize] = true;
                children[*when_false as usize] = true;
            }
        }
        let mut roots: Vec<(i64, u32)> = (0..count)
            .filter(|i| !children[*i])
            .map(|i| (tree_ids[i], i as u32))
            .collect();
        roots.sort_unstable();
        if roots.windows(2).any(|w| w[0].0 == w[1].0) {
            return None;
        }
        let forest = Forest {
            nodes,
            roots: roots.into_iter().map(|(_, i)| i).collect(),
            votes,
            output,
            width,
        };
        // A cycle would never end: every walk must reach a leaf within `count` steps.
        forest.is_acyclic().then_some(forest)
    }

    fn is_acyclic(&self) -> bool {
        let mut depth = vec![None::<usize>; self.nodes.len()];
        let mut stack: Vec<(u32, usize)> = self.roots.iter().map(|r| (*r, 0)).collect();
        while let Some((at, d)) = stack.pop() {
            if d > self.nodes.len() || depth[at as usize].is_some() {
                return false;
            }
            depth[at as usize] = Some(d);
            if let Node::Branch {
                when_true,
                when_false,
                ..
            } = self.nodes[at as usize]
            {
                stack.push((when_true, d + 1));
                stack.push((when_false, d + 1));
            }
        }
        true
    }

    /// The widest row the forest reads.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The probability of class 1 of one row of features.
    pub fn score(&self, row: &[f32]) -> f64 {
        let mut sums = [0f32; 2];
        for root in &self.roots {
            let mut at = *root;
            loop {
                match self.nodes[at as usize] {
                    Node::Branch {
                        feature,
                        mode,
                        threshold,
                        when_true,
                        when_false,
                    } => {
                        at = if mode.holds(row[feature as usize], threshold) {
                            when_true
                        } else {
                            when_false
                        };
                    }
                    Node::Leaf { start, end } => {
                        for (class, weight) in &self.votes[start as usize..end as usize] {
                            sums[*class as usize] += weight;
                        }
                        break;
                    }
                }
            }
        }
        match self.output {
            Output::Logistic { base } => {
                let score = sums[0] + base;
                f64::from(1.0 / (1.0 + (-score).exp()))
            }
            Output::Votes { base } => f64::from(sums[1] + base),
            Output::Single => f64::from(sums[0]),
        }
    }
}
