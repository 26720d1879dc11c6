"""A real pretrained generative language model (SmolLM2-135M-Instruct) for recommendation.

* :func:`load_language_model` (``loader.py``): the weights from the data registry
  (``mtrec data fetch smollm2``), converted once to a safetensors folder and verified on every
  load; never the network.
* :func:`candidate_log_likelihood` and :func:`history_prompt` (``scoring.py``): zero-shot
  ranking: log P(candidate title | the user's history as a prompt), the prompt run once.
* :func:`add_lora` and :func:`trainable_share` (``lora.py``): low-rank adapters for fine-tuning.
* :class:`YesNoScorer`, :func:`encode_prompts`, :func:`yes_probability` (``yesno.py``): the LM as
  a click-like classifier, P(" Yes") against P(" No") after a prompt (TALLRec).

transformers, gguf and peft (``pip install 'mtrec[text,llm]'``) are imported only when a function
needs them, so ``import mtrec.models.llm`` stays light.
"""

from mtrec.models.llm.loader import converted_dir, folder_problem, load_language_model
from mtrec.models.llm.lora import add_lora, linear_names, trainable_share
from mtrec.models.llm.scoring import candidate_log_likelihood, history_prompt
from mtrec.models.llm.yesno import ANSWERS, YesNoScorer, encode_prompts, yes_probability

__all__ = [
    "ANSWERS",
    "YesNoScorer",
    "add_lora",
    "candidate_log_likelihood",
    "converted_dir",
    "encode_prompts",
    "folder_problem",
    "history_prompt",
    "linear_names",
    "load_language_model",
    "trainable_share",
    "yes_probability",
]
