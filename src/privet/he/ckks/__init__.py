"""CKKS through TenSEAL: parameters chosen from the computation, encrypted vectors and
encrypted inference.

privet does not reimplement lattice cryptography: TenSEAL (on Microsoft SEAL) does
the arithmetic. What privet adds is what is easy to get wrong around it:

- parameters from what the computation needs (:func:`choose_parameters`: depth,
  precision, integer bits, vector length), 128-bit secure by the HE Standard table
  and explained (:meth:`CkksParameters.explain`);
- depth checked before anything runs: a model states its :class:`Requirements`,
  a context too shallow is refused before encryption, and a vector out of levels
  is refused with the depth needed, not TenSEAL's "scale out of bounds";
- encrypted inference packed one ciphertext per feature
  (:func:`encrypt_columns`): linear models, logistic regression with a polynomial
  sigmoid whose error is measured, and polynomial MLPs; fitted scikit-learn models
  load directly;
- contexts and vectors through :mod:`privet.wire`, the secret key in its own kind,
  and only the evaluation keys a computation needs in a public context.

Example::

    model = EncryptedLogisticRegression.from_sklearn(fitted, reference_rows=X_train)
    parameters = model.requirements.parameters(precision_bits=12, length=len(X))
    secret = CkksContext.create(parameters, model.requirements.keys)
    rows = encrypt_columns(secret.public(), X, requirements=model.requirements)
    probabilities = decrypt(secret, model.predict_proba(rows))

TenSEAL is needed: ``pip install 'privet[he]'``; this package is imported by name.
"""

from __future__ import annotations

from privet.he.ckks.codec import (
    COLUMNS_KIND,
    PUBLIC_CONTEXT_KIND,
    SECRET_CONTEXT_KIND,
    VECTOR_KIND,
    decode_columns,
    decode_public_context,
    decode_secret_context,
    decode_vector,
    encode_columns,
    encode_public_context,
    encode_secret_context,
    encode_vector,
)
from privet.he.ckks.columns import EncryptedColumns, encrypt_columns
from privet.he.ckks.context import CkksContext, KeyNeeds, Requirements
from privet.he.ckks.models import EncryptedLinearModel, EncryptedLogisticRegression, EncryptedMlp
from privet.he.ckks.parameters import CkksParameters, choose_parameters, noise_bits
from privet.he.ckks.polynomial import (
    PolynomialApproximation,
    fit_polynomial,
    polyval_depth,
    sigmoid_approximation,
)
from privet.he.ckks.vector import CkksVector, decrypt, encrypt

__all__ = [
    "COLUMNS_KIND",
    "PUBLIC_CONTEXT_KIND",
    "SECRET_CONTEXT_KIND",
    "VECTOR_KIND",
    "CkksContext",
    "CkksParameters",
    "CkksVector",
    "EncryptedColumns",
    "EncryptedLinearModel",
    "EncryptedLogisticRegression",
    "EncryptedMlp",
    "KeyNeeds",
    "PolynomialApproximation",
    "Requirements",
    "choose_parameters",
    "decode_columns",
    "decode_public_context",
    "decode_secret_context",
    "decode_vector",
    "decrypt",
    "encode_columns",
    "encode_public_context",
    "encode_secret_context",
    "encode_vector",
    "encrypt",
    "encrypt_columns",
    "fit_polynomial",
    "noise_bits",
    "polyval_depth",
    "sigmoid_approximation",
]
