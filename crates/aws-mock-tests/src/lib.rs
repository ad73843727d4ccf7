//! docpipe-aws-mock-tests: no code, only tests (see `tests/`). A crate of its own so that
//! the SDKs' `test-util` feature, which `aws-smithy-mocks` needs, rebuilds them for these
//! tests alone and never for the functions or the rest of the workspace.
