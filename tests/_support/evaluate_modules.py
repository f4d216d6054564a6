"""A Hugging Face ``evaluate`` module script (word overlap) that metric tests write into a project folder."""

# A module scoring each pair (a per-example list) and the batch (one number), as bertscore or rouge do.
OVERLAP = '''
import datasets
import evaluate


class Overlap(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="word overlap", citation="", inputs_description="",
            features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references, lowercase=False):
        fold = str.lower if lowercase else str
        scores = [len(set(fold(p).split()) & set(fold(r).split())) / max(1, len(set(fold(r).split())))
                  for p, r in zip(predictions, references)]
        return {"overlap": scores, "exact": sum(p == r for p, r in zip(predictions, references)) / len(predictions)}
'''
