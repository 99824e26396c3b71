"""The domain: what an execution is, how it is checked, identified, and stripped of secrets.

Pure (no store, no files, no MLflow): ``records`` (the pydantic records and answers'
vocabulary), ``screen`` (validation with field and line), ``identity`` (pattern and content
identity), ``redaction`` (secrets), ``prepared`` (one validated record, ready to write).
"""
