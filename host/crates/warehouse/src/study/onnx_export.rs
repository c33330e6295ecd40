//! A released logistic regression written as an ONNX model, so that it can be evaluated
//! by a `model-evaluation` study on a later period (temporal validation). The graph uses
//! standard operators only: `probability = Sigmoid(MatMul(features, W) + B)`, with
//! `features` a float tensor `[N, p]` in the fit's feature order and `probability`
//! `[N, 1]`. Only the coefficients the researcher already holds go into it.
//!
//! The few ONNX messages needed are declared here with prost (field numbers from
//! onnx.proto3): writing a model needs no ONNX library, and the host never parses one.

use prost::Message;

#[derive(Clone, PartialEq, Message)]
struct ModelProto {
    #[prost(int64, tag = "1")]
    ir_version: i64,
    #[prost(string, tag = "2")]
    producer_name: String,
    #[prost(message, optional, tag = "7")]
    graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "8")]
    opset_import: Vec<OperatorSetIdProto>,
}

#[derive(Clone, PartialEq, Message)]
struct OperatorSetIdProto {
    #[prost(string, tag = "1")]
    domain: String,
    #[prost(int64, tag = "2")]
    version: i64,
}

#[derive(Clone, PartialEq, Message)]
struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(message, repeated, tag = "5")]
    initializer: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    output: Vec<ValueInfoProto>,
}

#[derive(Clone, PartialEq, Message)]
struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    output: Vec<String>,
    #[prost(string, tag = "3")]
    name: String,
    #[prost(string, tag = "4")]
    op_type: String,
}

#[derive(Clone, PartialEq, Message)]
struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    data_type: i32,
    #[prost(float, repeated, tag = "4")]
    float_data: Vec<f32>,
    #[prost(string, tag = "8")]
    name: String,
}

#[derive(Clone, PartialEq, Message)]
struct ValueInfoProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "2")]
    r#type: Option<TypeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct TypeProto {
    #[prost(message, optional, tag = "1")]
    tensor_type: Option<TensorType>,
}

#[derive(Clone, PartialEq, Message)]
struct TensorType {
    #[prost(int32, tag = "1")]
    elem_type: i32,
    #[prost(message, optional, tag = "2")]
    shape: Option<TensorShapeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    dim: Vec<Dimension>,
}

#[derive(Clone, PartialEq, Message)]
struct Dimension {
    #[prost(int64, optional, tag = "1")]
    dim_value: Option<i64>,
    #[prost(string, optional, tag = "2")]
    dim_param: Option<String>,
}

const FLOAT: i32 = 1;

fn value(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorType {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            dim_value: *d,
                            dim_param: d.is_none().then(|| "N".to_owned()),
                        })
                        .collect(),
                }),
            }),
        }),
    }
}

fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: vec![output.to_owned()],
        name: output.to_owned(),
        op_type: op.to_owned(),
    }
}

/// The logistic model `Sigmoid(intercept + Σ coefficient · feature)` as ONNX bytes.
pub fn logistic_model(intercept: f64, coefficients: &[f64]) -> Vec<u8> {
    let p = coefficients.len() as i64;
    let graph = GraphProto {
        name: "carrel-logistic-regression".into(),
        node: vec![
            node("MatMul", &["features", "coefficients"], "linear"),
            node("Add", &["linear", "intercept"], "logit"),
            node("Sigmoid", &["logit"], "probability"),
        ],
        initializer: vec![
            TensorProto {
                dims: vec![p, 1],
                data_type: FLOAT,
                float_data: coefficients.iter().map(|&b| b as f32).collect(),
                name: "coefficients".into(),
            },
            TensorProto {
                dims: vec![1],
                data_type: FLOAT,
                float_data: vec![intercept as f32],
                name: "intercept".into(),
            },
        ],
        input: vec![value("features", &[None, Some(p)])],
        output: vec![value("probability", &[None, Some(1)])],
    };
    ModelProto {
        ir_version: 8,
        producer_name: "carrel".into(),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
    }
    .encode_to_vec()
}

/// The model of a released fit's coefficient table (`term`, `estimate`): the intercept
/// first, then the features in order.
pub fn from_released(table: &arrow_array::RecordBatch) -> Result<Vec<u8>, String> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    let estimates = table
        .column_by_name("estimate")
        .and_then(|c| c.as_primitive_opt::<arrow_array::types::Float64Type>())
        .ok_or("the released table has no `estimate` column: not a fitted regression")?;
    let first_term = table
        .column_by_name("term")
        .and_then(|c| c.as_string_opt::<i32>())
        .filter(|terms| !terms.is_empty())
        .map(|terms| terms.value(0));
    if first_term != Some("(intercept)") {
        return Err("the released table does not start with the intercept".into());
    }
    let values: Vec<f64> = estimates.values().iter().copied().collect();
    let (intercept, coefficients) = values
        .split_first()
        .ok_or("the released table has no coefficient")?;
    Ok(logistic_model(*intercept, coefficients))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_round_trips_through_the_onnx_messages() {
        let bytes = logistic_model(-4.0, &[0.03, 0.6]);
        let model = ModelProto::decode(bytes.as_slice()).unwrap();
        let graph = model.graph.unwrap();
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["MatMul", "Add", "Sigmoid"]);
        assert_eq!(graph.initializer[0].dims, [2, 1]);
        assert_eq!(graph.initializer[0].float_data, [0.03, 0.6]);
        assert_eq!(graph.initializer[1].float_data, [-4.0]);
        assert_eq!(model.opset_import[0].version, 13);
        let input = graph.input[0].r#type.as_ref().unwrap();
        let dims = &input
            .tensor_type
            .as_ref()
            .unwrap()
            .shape
            .as_ref()
            .unwrap()
            .dim;
        assert_eq!(dims[0].dim_param.as_deref(), Some("N"));
        assert_eq!(dims[1].dim_value, Some(2));
    }
}
