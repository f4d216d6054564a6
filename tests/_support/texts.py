"""Hypotheses and references that the text metrics' tests (one process or several) score."""

HYPS = [
    "The cat sat on the mat.",
    "Hello world!",
    "It was a truly great film, with superb acting and a moving story.",
    "Paris is the capital of France",
    "the quick brown fox jumped over the lazy dog",
    "I would not recommend this movie to anyone.",
]


REFS = [
    "The cat is sitting on the mat.",
    "Hello, world.",
    "It was a great film with superb acting and a moving plot.",
    "The capital of France is Paris.",
    "The quick brown fox jumps over the lazy dog.",
    "I would not recommend this film to anybody.",
]
