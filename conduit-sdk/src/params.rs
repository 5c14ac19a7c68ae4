//! Tool parameters as JSON, with nothing changed on the way.
//!
//! `serde_json` writes a NaN or infinite float as `null`: the server would
//! get another value than the caller gave. [`to_json`] walks the value
//! first and refuses such a float, naming where it is.

use std::fmt;

use serde::ser::{self, Serialize};
use serde_json::Value;

/// `value` as JSON; a NaN or infinite float anywhere in it is an error
/// naming its path (`parameters.scores[2]`).
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T, root: &str) -> Result<Value, String> {
    value.serialize(Finite { path: root }).map_err(|e| e.0)?;
    serde_json::to_value(value).map_err(|e| format!("{root} could not be serialized: {e}"))
}

/// Checks floats, recursing into everything else; its output is nothing.
#[derive(Clone, Copy)]
struct Finite<'a> {
    path: &'a str,
}

#[derive(Debug)]
struct NotFinite(String);

impl fmt::Display for NotFinite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotFinite {}

impl ser::Error for NotFinite {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        NotFinite(msg.to_string())
    }
}

impl Finite<'_> {
    fn float(self, x: f64) -> Result<(), NotFinite> {
        if x.is_finite() {
            Ok(())
        } else {
            Err(NotFinite(format!(
                "{} is {x}, which JSON cannot carry (it would be sent as null)",
                self.path
            )))
        }
    }
}

/// Checks the elements of a sequence, map or struct, keeping their paths.
struct Compound<'a> {
    path: &'a str,
    index: usize,
    key: Option<String>,
}

impl Compound<'_> {
    fn check<T: Serialize + ?Sized>(&mut self, value: &T, at: String) -> Result<(), NotFinite> {
        value.serialize(Finite { path: &at })
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), NotFinite> {
        let at = format!("{}[{}]", self.path, self.index);
        self.index += 1;
        self.check(value, at)
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), NotFinite> {
        let at = format!("{}.{key}", self.path);
        self.check(value, at)
    }
}

macro_rules! ok_scalars {
    ($($method:ident: $ty:ty),* $(,)?) => {
        $(fn $method(self, _: $ty) -> Result<(), NotFinite> { Ok(()) })*
    };
}

impl<'a> ser::Serializer for Finite<'a> {
    type Ok = ();
    type Error = NotFinite;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    ok_scalars!(
        serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_char: char,
        serialize_str: &str, serialize_bytes: &[u8],
    );

    fn serialize_f32(self, x: f32) -> Result<(), NotFinite> {
        self.float(f64::from(x))
    }

    fn serialize_f64(self, x: f64) -> Result<(), NotFinite> {
        self.float(x)
    }

    fn serialize_none(self) -> Result<(), NotFinite> {
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), NotFinite> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), NotFinite> {
        Ok(())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), NotFinite> {
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), NotFinite> {
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), NotFinite> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), NotFinite> {
        let at = format!("{}.{variant}", self.path);
        value.serialize(Finite { path: &at })
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a>, NotFinite> {
        Ok(self.compound())
    }

    fn serialize_tuple(self, _: usize) -> Result<Compound<'a>, NotFinite> {
        Ok(self.compound())
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, NotFinite> {
        Ok(self.compound())
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, NotFinite> {
        Ok(self.compound())
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'a>, NotFinite> {
        Ok(self.compound())
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, NotFinite> {
        Ok(self.compound())
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, NotFinite> {
        Ok(self.compound())
    }
}

impl<'a> Finite<'a> {
    fn compound(self) -> Compound<'a> {
        Compound {
            path: self.path,
            index: 0,
            key: None,
        }
    }
}

macro_rules! elements {
    ($($trait:ident :: $method:ident),* $(,)?) => {$(
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = NotFinite;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), NotFinite> {
                self.element(value)
            }
            fn end(self) -> Result<(), NotFinite> {
                Ok(())
            }
        }
    )*};
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = NotFinite;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), NotFinite> {
        // Keys are named by their JSON form; a key that is not a string or
        // number is serde_json's error to report.
        self.key = Some(match serde_json::to_value(key) {
            Ok(Value::String(s)) => s,
            Ok(other) => other.to_string(),
            Err(_) => "?".to_owned(),
        });
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), NotFinite> {
        let key = self.key.take().unwrap_or_default();
        self.field(&key, value)
    }

    fn end(self) -> Result<(), NotFinite> {
        Ok(())
    }
}

macro_rules! fields {
    ($($trait:ident),* $(,)?) => {$(
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = NotFinite;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), NotFinite> {
                self.field(key, value)
            }
            fn end(self) -> Result<(), NotFinite> {
                Ok(())
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;
    use serde_json::json;

    use super::*;

    #[derive(Serialize)]
    struct Order {
        id: String,
        scores: Vec<f64>,
        weights: BTreeMap<String, f32>,
        note: Option<f64>,
    }

    #[test]
    fn finite_values_pass_unchanged() {
        let order = Order {
            id: "o1".into(),
            scores: vec![1.5, -0.0, 1e300],
            weights: BTreeMap::from([("a".into(), 0.25)]),
            note: None,
        };
        assert_eq!(
            to_json(&order, "parameters").unwrap(),
            json!({"id": "o1", "scores": [1.5, -0.0, 1e300], "weights": {"a": 0.25}, "note": null})
        );
    }

    #[test]
    fn nan_and_infinity_are_refused_with_their_path() {
        let order = Order {
            id: "o1".into(),
            scores: vec![1.0, 2.0, f64::NAN],
            weights: BTreeMap::new(),
            note: None,
        };
        let e = to_json(&order, "parameters").unwrap_err();
        assert!(e.starts_with("parameters.scores[2] is NaN"), "{e}");
        let weights = BTreeMap::from([("w".to_owned(), f32::INFINITY)]);
        let e = to_json(&weights, "parameters").unwrap_err();
        assert!(e.starts_with("parameters.w is inf"), "{e}");
        let e = to_json(&Some(f64::NEG_INFINITY), "parameter \"x\"").unwrap_err();
        assert!(e.starts_with("parameter \"x\" is -inf"), "{e}");
        let e = to_json(&json!({"a": [{"b": 1}]}), "p").map(|_| ());
        assert!(e.is_ok(), "a Value holds no NaN: {e:?}");
    }
}
