"""Makes the model fixtures of tests/models: small binary classifiers as people export them
(scikit-learn through skl2onnx, and a network of standard operators written with the onnx
helper API as PyTorch's exporter writes it), the consultations they are scored on, the
feature matrix those rows give, and onnxruntime's probability of class 1 for each model.

The Rust tests compare the sandbox's scores with these, so `cargo test` needs no Python.
Run it again only to change the fixtures:

    python3 -m venv target/model-venv
    target/model-venv/bin/pip install scikit-learn skl2onnx onnxruntime onnx numpy
    target/model-venv/bin/python tests/models/make_models.py

Every model reads the same declared features (FEATURES), built from the canonical columns
as the study SDK builds them (components/study-sdk/src/features.rs).
"""

import json
import pathlib

import numpy as np
import onnx
import onnxruntime
import skl2onnx
import sklearn
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler

HERE = pathlib.Path(__file__).resolve().parent
FEATURES = [
    "age_years",
    "hour",
    "sex=F",
    "visit_type=home",
    "visit_type=tele",
    "departement=35",
    "diagnoses:J10",
    "diagnoses:J11",
    "diagnoses:R50",
]
SEXES = ["F", "M", "U"]
VISITS = ["home", "centre", "tele", "other"]
DEPARTEMENTS = ["35", "29", "2A", "75"]
CODES = ["J10", "J101", "J11", "J111", "R50", "R509", "A09", "J21", "http://snomed.info/sct|J10"]


def consultations(rng, n):
    """Rows as the host hands them, with the outcome drawn from a known logistic model."""
    rows = []
    for _ in range(n):
        codes = list(rng.choice(CODES, size=rng.integers(0, 3), replace=False))
        rows.append(
            {
                "age_years": int(rng.integers(0, 91)),
                "hour": int(rng.integers(0, 24)),
                "sex": str(rng.choice(SEXES)),
                "visit_type": str(rng.choice(VISITS)),
                "departement": str(rng.choice(DEPARTEMENTS)),
                "diagnoses": [str(c) for c in codes],
            }
        )
    return rows


def feature_matrix(rows):
    """The SDK's reading of FEATURES, independently written."""

    def value(row, feature):
        if feature in ("age_years", "hour"):
            return float(row[feature])
        if feature.startswith("diagnoses:"):
            prefix = feature.split(":", 1)[1]
            return float(any(code.startswith(prefix) for code in row["diagnoses"]))
        column, wanted = feature.split("=", 1)
        return float(row.get(column) == wanted)

    return np.array([[value(r, f) for f in FEATURES] for r in rows], dtype=np.float32)


def outcomes(rng, x):
    logit = -4.0 + 0.04 * x[:, 0] + 0.9 * x[:, 3] - 0.6 * x[:, 4] + 1.2 * x[:, 6] + 0.8 * x[:, 8]
    logit += 0.03 * (x[:, 1] - 12) ** 2 / 10
    return (rng.random(len(x)) < 1 / (1 + np.exp(-logit))).astype(np.int64)


def torch_style_network(rng):
    """A network as torch.onnx.export writes `Linear -> ReLU -> Linear -> Sigmoid`: Gemm
    with transB=1, a dynamic batch axis, one output of shape [batch, 1]."""
    hidden = 8
    w1 = rng.normal(0, 0.3, size=(hidden, len(FEATURES))).astype(np.float32)
    b1 = rng.normal(0, 0.1, size=hidden).astype(np.float32)
    w2 = rng.normal(0, 0.3, size=(1, hidden)).astype(np.float32)
    b2 = np.array([-0.5], dtype=np.float32)
    nodes = [
        helper.make_node("Gemm", ["input", "fc1.weight", "fc1.bias"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "fc2.weight", "fc2.bias"], ["logit"], transB=1),
        helper.make_node("Sigmoid", ["logit"], ["probability"]),
    ]
    graph = helper.make_graph(
        nodes,
        "torch_jit",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", len(FEATURES)])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch", 1])],
        [
            numpy_helper.from_array(w1, "fc1.weight"),
            numpy_helper.from_array(b1, "fc1.bias"),
            numpy_helper.from_array(w2, "fc2.weight"),
            numpy_helper.from_array(b2, "fc2.bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.producer_name = "pytorch-style (onnx.helper)"
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def torch_style_softmax_network(rng):
    """MatMul + Add and a two-class Softmax, the other way exporters write a classifier."""
    w = rng.normal(0, 0.3, size=(len(FEATURES), 2)).astype(np.float32)
    b = np.array([0.2, -0.2], dtype=np.float32)
    nodes = [
        helper.make_node("MatMul", ["input", "weight"], ["mm"]),
        helper.make_node("Add", ["mm", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "torch_jit",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", len(FEATURES)])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 2])],
        [numpy_helper.from_array(w, "weight"), numpy_helper.from_array(b, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def unknown_operator_model():
    """A valid ONNX file whose one operator no runtime here knows."""
    node = helper.make_node("FancyCalibrator", ["input"], ["probability"], domain="com.example")
    graph = helper.make_graph(
        [node],
        "custom",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", len(FEATURES)])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch", 1])],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)],
    )
    model.ir_version = 8
    return model


def class_one_probability(session, x):
    outputs = session.run(None, {session.get_inputs()[0].name: x})
    for output, meta in zip(outputs, session.get_outputs()):
        if meta.type.startswith("seq(map"):
            return [float(row[1]) for row in output]
    for output in outputs:
        if output.dtype == np.float32:
            return [float(v) for v in (output[:, 1] if output.shape[1] == 2 else output[:, 0])]
    raise ValueError("no probability output")


def main():
    rng = np.random.default_rng(22)
    train_rows = consultations(rng, 4000)
    x_train = feature_matrix(train_rows)
    y_train = outcomes(rng, x_train)
    test_rows = consultations(rng, 300)
    # Rows of unknown age and rows without any of the text values: the SDK skips the
    # first (no score) and reads the second as conditions that do not hold.
    test_rows[7]["age_years"] = None
    test_rows[8]["sex"] = None
    test_rows[8]["visit_type"] = None
    test_rows[8]["departement"] = None
    scored = [r for r in test_rows if r["age_years"] is not None]
    x_test = feature_matrix(scored)

    sklearn_models = {
        "logistic_regression": LogisticRegression(max_iter=1000),
        "scaled_logistic_regression": make_pipeline(StandardScaler(), LogisticRegression()),
        "normalized_logistic_regression": make_pipeline(Normalizer(), LogisticRegression()),
        # The bench's model too: 40 trees of depth 3.
        "gradient_boosting": GradientBoostingClassifier(n_estimators=40, max_depth=3),
        "random_forest": RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0),
        "mlp": MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=400, random_state=0),
    }
    models = {}
    for name, estimator in sklearn_models.items():
        estimator.fit(x_train, y_train)
        models[name] = to_onnx(estimator, x_train[:1], target_opset={"": 17, "ai.onnx.ml": 3})
        models[name + "_no_zipmap"] = to_onnx(
            estimator,
            x_train[:1],
            options={"zipmap": False},
            target_opset={"": 17, "ai.onnx.ml": 3},
        )
    models["torch_mlp"] = torch_style_network(rng)
    models["torch_softmax"] = torch_style_softmax_network(rng)

    versions = {
        "onnxruntime": onnxruntime.__version__,
        "scikit-learn": sklearn.__version__,
        "skl2onnx": skl2onnx.__version__,
        "onnx": onnx.__version__,
    }
    (HERE / "rows.json").write_text(
        json.dumps(
            {
                "features": FEATURES,
                "rows": test_rows,
                "matrix": x_test.tolist(),
            },
            indent=None,
        )
        + "\n"
    )
    for name, model in models.items():
        data = model.SerializeToString()
        (HERE / f"{name}.onnx").write_bytes(data)
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        scores = class_one_probability(session, x_test)
        operators = sorted({f"{n.domain or 'ai.onnx'}:{n.op_type}" for n in model.graph.node})
        (HERE / f"{name}.json").write_text(
            json.dumps({"model": f"{name}.onnx", "operators": operators, "versions": versions,
                        "scores": scores})
            + "\n"
        )
        print(f"{name}: {len(data)} bytes, {operators}")
    (HERE / "unknown_operator.onnx").write_bytes(unknown_operator_model().SerializeToString())


if __name__ == "__main__":
    main()
