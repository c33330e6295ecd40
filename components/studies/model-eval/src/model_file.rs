//! Reading the ONNX file a researcher brings: decoding, the checks that make a bad file a
//! clear refusal (not ONNX, truncated, too large, an operator the sandbox cannot run, the
//! wrong input width), and the rewrites that turn the graphs exporters write into graphs
//! tract runs, each proven against onnxruntime by the fixtures of tests/models:
//!
//! - `ZipMap` (scikit-learn's probabilities as a sequence of maps) is dropped: the
//!   probabilities tensor it reads becomes the output.
//! - `Scaler` (`StandardScaler`) becomes `Cast`, `Sub`, `Mul` of standard ONNX.
//! - A binary `TreeEnsembleClassifier` with one base value (skl2onnx's gradient boosting)
//!   gets a second, zero, base value, the layout tract accepts with the same result.
//! - Only the probability output is kept, so nothing computes the labels.

use std::collections::{BTreeSet, HashSet};

use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto,
    attribute_proto::AttributeType, tensor_proto::DataType, type_proto,
};
use tract_onnx::prelude::*;

use crate::error::ModelError;

/// The largest model file the sandbox accepts: 64 MiB, far above the small tabular
/// models it is for, and small enough for the sandbox's memory.
pub const MAX_MODEL_BYTES: usize = 64 * 1024 * 1024;

/// The ONNX domains whose operators tract implements.
const KNOWN_DOMAINS: [&str; 3] = ["", "ai.onnx", "ai.onnx.ml"];

/// Operators rewritten here before tract sees the graph.
const REWRITTEN: [&str; 2] = ["ZipMap", "Scaler"];

/// A decoded and checked model, rewritten for tract, with what the auditor is shown.
pub struct ModelFile {
    pub proto: ModelProto,
    /// The model's one input: its name, element type and width.
    pub input: Input,
    /// The operators of the file as exported (`domain:Name`, `ai.onnx` for the default
    /// domain), sorted.
    pub operators: Vec<String>,
}

/// The model's input as the file declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub name: String,
    pub double: bool,
    pub width: usize,
}

impl ModelFile {
    /// Decodes and checks `bytes`, the model of `features` declared features.
    pub fn read(bytes: &[u8], features: usize) -> Result<ModelFile, ModelError> {
        if bytes.len() > MAX_MODEL_BYTES {
            return Err(ModelError::TooLarge {
                bytes: bytes.len(),
                limit: MAX_MODEL_BYTES,
            });
        }
        if bytes.is_empty() {
            return Err(ModelError::NotOnnx("the file is empty".into()));
        }
        let mut proto = tract_onnx::onnx()
            .proto_model_for_read(&mut &*bytes)
            .map_err(|e| {
                ModelError::NotOnnx(format!(
                    "it does not decode as an ONNX protobuf, or is truncated ({e})"
                ))
            })?;
        check_envelope(&proto)?;
        let graph = proto.graph.as_ref().expect("checked by check_envelope");
        let mut operators = BTreeSet::new();
        check_operators(&proto, graph, &mut operators)?;
        let input = check_input(graph, features)?;
        let graph = proto.graph.as_mut().expect("checked by check_envelope");
        rewrite(graph)?;
        Ok(ModelFile {
            proto,
            input,
            operators: operators.into_iter().collect(),
        })
    }
}

/// What every ONNX model has: an IR version, operator sets, a graph with nodes and an
/// output. A truncated file that still decodes lacks one of them.
fn check_envelope(proto: &ModelProto) -> Result<(), ModelError> {
    let incomplete = |what: &str| {
        ModelError::NotOnnx(format!(
            "{what}: the file is not an ONNX model, or was truncated"
        ))
    };
    if proto.ir_version <= 0 {
        return Err(incomplete("it declares no IR version"));
    }
    let Some(graph) = &proto.graph else {
        return Err(incomplete("it has no graph"));
    };
    if proto.opset_import.is_empty() {
        return Err(incomplete("it imports no operator set"));
    }
    if graph.node.is_empty() {
        return Err(incomplete("its graph has no node"));
    }
    if graph.output.is_empty() {
        return Err(incomplete("its graph has no output"));
    }
    Ok(())
}

fn domain_name(domain: &str) -> &str {
    if domain.is_empty() { "ai.onnx" } else { domain }
}

/// Every operator, in the graph and in its subgraphs, is one tract implements (or one
/// rewritten here), of a domain the model imports; no tensor lives in an external file
/// (the sandbox has none).
fn check_operators(
    proto: &ModelProto,
    graph: &GraphProto,
    operators: &mut BTreeSet<String>,
) -> Result<(), ModelError> {
    let register = tract_onnx::onnx().op_register;
    let imported: HashSet<&str> = proto
        .opset_import
        .iter()
        .map(|set| domain_name(&set.domain))
        .collect();
    let mut graphs = vec![graph];
    while let Some(graph) = graphs.pop() {
        for tensor in &graph.initializer {
            check_embedded(tensor)?;
        }
        for node in &graph.node {
            let domain = domain_name(&node.domain);
            operators.insert(format!("{domain}:{}", node.op_type));
            let known = KNOWN_DOMAINS.contains(&node.domain.as_str())
                && (register.0.contains_key(&node.op_type)
                    || (domain == "ai.onnx.ml" && REWRITTEN.contains(&node.op_type.as_str())));
            if !known {
                return Err(ModelError::UnsupportedOperator {
                    operator: node.op_type.clone(),
                    domain: domain.to_owned(),
                });
            }
            if !imported.contains(domain) {
                return Err(ModelError::NotOnnx(format!(
                    "operator `{}` is of domain {domain}, which the model does not import \
                     (a truncated file?)",
                    node.op_type
                )));
            }
            for attribute in &node.attribute {
                graphs.extend(attribute.g.iter());
                graphs.extend(attribute.graphs.iter());
                if let Some(tensor) = &attribute.t {
                    check_embedded(tensor)?;
                }
            }
        }
    }
    Ok(())
}

fn check_embedded(tensor: &TensorProto) -> Result<(), ModelError> {
    if tensor.external_data.is_empty() && tensor.data_location != Some(1) {
        return Ok(());
    }
    Err(ModelError::Unsupported(format!(
        "tensor `{}` is kept in an external file: save the model with its weights inside",
        tensor.name
    )))
}

/// The model's one input (graph inputs with an initializer are constants): a float or
/// double matrix of shape [rows, width] whose width is the number of declared features.
fn check_input(graph: &GraphProto, features: usize) -> Result<Input, ModelError> {
    let constants: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&ValueInfoProto> = graph
        .input
        .iter()
        .filter(|input| !constants.contains(input.name.as_str()))
        .collect();
    let [input] = inputs[..] else {
        let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
        return Err(ModelError::Shape(format!(
            "the model takes {} inputs ({names:?}); a model evaluated here takes one, a \
             matrix of one row per consultation and one column per declared feature",
            names.len()
        )));
    };
    let shape_error = |why: String| ModelError::Shape(format!("input `{}` {why}", input.name));
    let Some(type_proto::Value::TensorType(tensor)) =
        input.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err(shape_error("is not a tensor".into()));
    };
    let double = match DataType::try_from(tensor.elem_type) {
        Ok(DataType::Float) => false,
        Ok(DataType::Double) => true,
        other => {
            return Err(shape_error(format!(
                "has elements of type {other:?}; features are float or double"
            )));
        }
    };
    let dims = tensor
        .shape
        .as_ref()
        .map(|s| s.dim.as_slice())
        .unwrap_or(&[]);
    use tract_onnx::pb::tensor_shape_proto::dimension::Value;
    let width = match dims {
        [_, width] => match width.value {
            Some(Value::DimValue(width)) if width > 0 => width as usize,
            _ => return Err(shape_error("does not declare its width".into())),
        },
        _ => {
            return Err(shape_error(format!(
                "has {} dimensions; expected 2, [rows, features]",
                dims.len()
            )));
        }
    };
    if width != features {
        return Err(ModelError::Width {
            input: input.name.clone(),
            width,
            features,
        });
    }
    Ok(Input {
        name: input.name.clone(),
        double,
        width,
    })
}

/// The rewrites of the module's note.
fn rewrite(graph: &mut GraphProto) -> Result<(), ModelError> {
    drop_zipmaps(graph)?;
    keep_probability_output(graph)?;
    let mut nodes = Vec::with_capacity(graph.node.len());
    for mut node in std::mem::take(&mut graph.node) {
        match (node.domain.as_str(), node.op_type.as_str()) {
            ("ai.onnx.ml", "Scaler") => {
                let (replacement, constants) = scaler(&node)?;
                nodes.extend(replacement);
                graph.initializer.extend(constants);
            }
            ("ai.onnx.ml", "TreeEnsembleClassifier") => {
                binary_base_values(&mut node)?;
                nodes.push(node);
            }
            _ => nodes.push(node),
        }
    }
    graph.node = nodes;
    Ok(())
}

/// Keeps the one output that can be probabilities: labels (integers, strings) go, so
/// tract prunes what computes them. A ZipMap's output was made a tensor of unknown type.
fn keep_probability_output(graph: &mut GraphProto) -> Result<(), ModelError> {
    let declared =
        |output: &ValueInfoProto| match output.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(type_proto::Value::TensorType(tensor)) => {
                DataType::try_from(tensor.elem_type).ok()
            }
            None => None,
        };
    let names: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    graph.output.retain(|output| {
        matches!(
            declared(output),
            None | Some(DataType::Float | DataType::Double)
        )
    });
    if graph.output.len() != 1 {
        return Err(ModelError::Output(format!(
            "of its outputs {names:?}, {} may be probabilities; expected exactly one",
            graph.output.len()
        )));
    }
    Ok(())
}

/// A graph output written by `ZipMap` becomes the tensor the `ZipMap` reads.
fn drop_zipmaps(graph: &mut GraphProto) -> Result<(), ModelError> {
    let mut kept = Vec::with_capacity(graph.node.len());
    for node in std::mem::take(&mut graph.node) {
        if node.domain != "ai.onnx.ml" || node.op_type != "ZipMap" {
            kept.push(node);
            continue;
        }
        let (Some(from), Some(to)) = (node.input.first(), node.output.first()) else {
            return Err(ModelError::Unsupported(
                "a ZipMap without input or output".into(),
            ));
        };
        let read_by_nodes = kept
            .iter()
            .chain(graph.node.iter())
            .any(|other| other.input.contains(to));
        let output = graph.output.iter_mut().find(|output| output.name == *to);
        match output {
            Some(output) if !read_by_nodes => {
                output.name = from.clone();
                // Its type was a sequence of maps: the tensor's is inferred.
                output.r#type = None;
            }
            _ => {
                return Err(ModelError::Unsupported(
                    "a ZipMap whose maps are read by another operator".into(),
                ));
            }
        }
    }
    graph.node = kept;
    Ok(())
}

fn floats_attribute(node: &NodeProto, name: &str) -> Vec<f32> {
    node.attribute
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.floats.clone())
        .unwrap_or_default()
}

/// `Scaler(offset, scale)` is `(float(x) - offset) * scale`, as onnxruntime computes it.
fn scaler(node: &NodeProto) -> Result<(Vec<NodeProto>, Vec<TensorProto>), ModelError> {
    let (Some(input), Some(output)) = (node.input.first(), node.output.first()) else {
        return Err(ModelError::Unsupported(
            "a Scaler without input or output".into(),
        ));
    };
    let offset = floats_attribute(node, "offset");
    let scale = floats_attribute(node, "scale");
    if offset.is_empty() || scale.is_empty() {
        return Err(ModelError::Unsupported(
            "a Scaler without offset or scale".into(),
        ));
    }
    let name = |suffix: &str| format!("{output}.carrel_scaler_{suffix}");
    let constant = |suffix: &str, values: Vec<f32>| TensorProto {
        dims: vec![values.len() as i64],
        data_type: DataType::Float as i32,
        float_data: values,
        name: name(suffix),
        ..TensorProto::default()
    };
    let node = |op: &str, inputs: Vec<String>, output: String, attribute| NodeProto {
        input: inputs,
        output: vec![output],
        name: name(op),
        op_type: op.into(),
        attribute,
        ..NodeProto::default()
    };
    let to_float = AttributeProto {
        name: "to".into(),
        r#type: AttributeType::Int as i32,
        i: DataType::Float as i64,
        ..AttributeProto::default()
    };
    let nodes = vec![
        node("Cast", vec![input.clone()], name("float"), vec![to_float]),
        node(
            "Sub",
            vec![name("float"), name("offset")],
            name("centred"),
            vec![],
        ),
        node(
            "Mul",
            vec![name("centred"), name("scale")],
            output.clone(),
            vec![],
        ),
    ];
    Ok((
        nodes,
        vec![constant("offset", offset), constant("scale", scale)],
    ))
}

/// skl2onnx writes a binary gradient-boosting classifier as two class labels, every leaf
/// weighing on class 0 and one base value: onnxruntime's probability of class 1 is then
/// `post_transform(sum + base_values[0])`. tract wants one base value per class; with the
/// same leaves it computes class 1 from column 0 plus `base_values[0]` and never reads
/// `base_values[1]`, so a zero there gives the same probabilities.
fn binary_base_values(node: &mut NodeProto) -> Result<(), ModelError> {
    if let Some(attribute) = node
        .attribute
        .iter()
        .find(|a| a.name.ends_with("_as_tensor"))
    {
        return Err(ModelError::Unsupported(format!(
            "TreeEnsembleClassifier attribute `{}` (double-precision trees): export the model \
             with float inputs",
            attribute.name
        )));
    }
    let labels = node
        .attribute
        .iter()
        .find(|a| a.name == "classlabels_int64s" || a.name == "classlabels_strings")
        .map(|a| a.ints.len().max(a.strings.len()))
        .unwrap_or(0);
    let all_class_zero = node
        .attribute
        .iter()
        .find(|a| a.name == "class_ids")
        .is_some_and(|a| a.ints.iter().all(|id| *id == 0));
    let Some(base) = node.attribute.iter_mut().find(|a| a.name == "base_values") else {
        return Ok(());
    };
    match (labels, base.floats.len()) {
        (2, 1) if all_class_zero => {
            base.floats.push(0.0);
            Ok(())
        }
        (2, 1) => Err(ModelError::Unsupported(
            "a binary TreeEnsembleClassifier with one base value and leaves of both classes".into(),
        )),
        _ => Ok(()),
    }
}

/// The datum type of the model's input.
pub fn input_datum_type(input: &Input) -> DatumType {
    if input.double {
        f64::datum_type()
    } else {
        f32::datum_type()
    }
}
