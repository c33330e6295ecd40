//! Spin application variables (`spin:variables@3.0.0` and `fermyon:spin/variables@2.0.0`).
//!
//! Values are resolved once when the app starts (defaults, `SPIN_VARIABLE_*` overrides,
//! templates) and each component sees only the variables its manifest section declares.

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../../wit",
        world: "carrel:eds/spin-variables",
        imports: {
            "fermyon:spin/variables": async | trappable,
            default: trappable,
        },
    });
}

use crate::manifest::check_variable_name;
use bindings::{fermyon::spin::variables as v2, spin::variables::variables as v3};
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::component::{Accessor, HasData, Linker};

/// One component's variables: name → value, or why it has none.
#[derive(Clone, Default)]
pub struct VariableGrants {
    values: Arc<BTreeMap<String, Result<String, String>>>,
}

/// What the guest is told when it asks for a variable it cannot have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    InvalidName(String),
    Undefined(String),
}

impl VariableGrants {
    pub fn new(values: BTreeMap<String, Result<String, String>>) -> Self {
        Self {
            values: Arc::new(values),
        }
    }

    fn get(&self, name: &str) -> Result<String, LookupError> {
        if check_variable_name(name).is_err() {
            return Err(LookupError::InvalidName(format!(
                "{name} is not a valid variable name"
            )));
        }
        match self.values.get(name) {
            Some(Ok(v)) => Ok(v.clone()),
            Some(Err(why)) => Err(LookupError::Undefined(format!("{name}: {why}"))),
            None => Err(LookupError::Undefined(format!(
                "no variable named {name} is declared for this component"
            ))),
        }
    }
}

/// Implemented by the store data of instances that may read variables.
pub trait VariablesState: Send {
    fn variables(&mut self) -> &VariableGrants;
}

/// The host side of both variables interfaces.
pub struct Variables;

impl HasData for Variables {
    type Data<'a> = &'a VariableGrants;
}

pub fn add_to_linker<T: VariablesState + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    v3::add_to_linker::<T, Variables>(linker, |t| t.variables())?;
    v2::add_to_linker::<T, Variables>(linker, |t| t.variables())?;
    Ok(())
}

impl<T> v3::HostWithStore<T> for Variables {
    async fn get(
        accessor: &Accessor<T, Self>,
        name: String,
    ) -> wasmtime::Result<Result<String, v3::Error>> {
        Ok(accessor
            .with(|mut access| access.get().get(&name))
            .map_err(|e| match e {
                LookupError::InvalidName(m) => v3::Error::InvalidName(m),
                LookupError::Undefined(m) => v3::Error::Undefined(m),
            }))
    }
}

impl v3::Host for &VariableGrants {}

impl v2::Host for &VariableGrants {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, v2::Error>> {
        Ok(VariableGrants::get(self, &name).map_err(|e| match e {
            LookupError::InvalidName(m) => v2::Error::InvalidName(m),
            LookupError::Undefined(m) => v2::Error::Undefined(m),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_sees_only_its_declared_variables() {
        let grants = VariableGrants::new(BTreeMap::from([
            ("greeting".to_owned(), Ok("hello".to_owned())),
            (
                "token".to_owned(),
                Err("application variable `t` has no value".to_owned()),
            ),
        ]));
        assert_eq!(grants.get("greeting"), Ok("hello".to_owned()));
        assert!(matches!(
            grants.get("token"),
            Err(LookupError::Undefined(_))
        ));
        assert!(matches!(
            grants.get("other"),
            Err(LookupError::Undefined(_))
        ));
        assert!(matches!(
            grants.get("Bad-Name"),
            Err(LookupError::InvalidName(_))
        ));
    }
}
