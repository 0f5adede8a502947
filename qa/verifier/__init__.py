"""The answer verifier: P(the served answer is correct) from features of each candidate answer.

features.py turns a reader's answer groups (+ retrieval scores) into feature rows; model.py holds the
fitted model as data (JSON: standardisation, logistic coefficients, isotonic calibration) and scores rows
with numpy alone; qa/training/verifier.py builds the open-setting training data and fits it (scikit-learn).
"""
