pub mod pb { tonic::include_proto!("pb"); }
