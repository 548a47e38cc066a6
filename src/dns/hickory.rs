//! hickory-resolver implementation of [`super::Resolver`] (being written).
pub struct HickoryResolver;
pub struct ResolverSetup;
