"""Documents: text → sentences → text. Segmentation that keeps what lies between the sentences, splitting of
segments longer than the model was trained for, and language identification.
"""
