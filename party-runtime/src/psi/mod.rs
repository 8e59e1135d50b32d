//! Private set intersection protocols, generic over the party link. One protocol per file.

pub mod ecdh;
