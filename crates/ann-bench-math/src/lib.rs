//! MATH benchmark: loader, boxed-answer extraction and equivalence checking.
