//! Tool parameters as JSON, with nothing changed on the way.
//!
//! `serde_json` writes a NaN or infinite float as `null`: the server would
//! get another value than the caller gave. [`to_json`] walks the value
//! first and refuses such a float, naming where it is.

use std::fmt;

use serde::ser::{self, Serialize};
use serde_json::Value;

/// `value` as JSON; a NaN or infinite float anywhere in it is an error
/// naming its path (`parameters.scores[2]`). Paths are only written out for
/// the error: a finite value costs no allocation beyond its JSON.
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T, root: Root<'_>) -> Result<Value, String> {
    let root = Path::Root(root);
    value.serialize(Finite { path: &root }).map_err(|e| e.0)?;
    serde_json::to_value(value).map_err(|e| format!("{root} could not be serialized: {e}"))
}

/// What is being turned into JSON.
#[derive(Clone, Copy)]
pub(crate) enum Root<'a> {
    /// A whole request body.
    Body,
    /// The body field of this name.
    Field(&'a str),
    /// The tool parameter of this name.
    Parameter(&'a str),
}

/// Where in the value a float is, written out only for an error.
enum Path<'a> {
    Root(Root<'a>),
    Index(&'a Path<'a>, usize),
    Field(&'a Path<'a>, &'a str),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root(Root::Body) => f.write_str("body"),
            Path::Root(Root::Field(name)) => f.write_str(name),
            Path::Root(Root::Parameter(key)) => write!(f, "parameter {key:?}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
            Path::Field(parent, name) => write!(f, "{parent}.{name}"),
        }
    }
}

/// Checks floats, recursing into everything else; its output is nothing.
#[derive(Clone, Copy)]
struct Finite<'a> {
    path: &'a Path<'a>,
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
    path: &'a Path<'a>,
    index: usize,
    /// The current map key, in one buffer reused for every key.
    key: String,
}

impl Compound<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), NotFinite> {
        let at = Path::Index(self.path, self.index);
        self.index += 1;
        value.serialize(Finite { path: &at })
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), NotFinite> {
        let at = Path::Field(self.path, key);
        value.serialize(Finite { path: &at })
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
        let at = Path::Field(self.path, variant);
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
            key: String::new(),
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
        // Keys are named by their text; a key that is not a string or a
        // number is serde_json's error to report.
        self.key.clear();
        let _ = key.serialize(KeyText(&mut self.key));
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), NotFinite> {
        let key = std::mem::take(&mut self.key);
        let result = self.field(&key, value);
        self.key = key;
        result
    }

    fn end(self) -> Result<(), NotFinite> {
        Ok(())
    }
}

/// Writes a map key's text into a buffer: strings and numbers, as JSON
/// object keys can be; anything else is left empty.
struct KeyText<'a>(&'a mut String);

macro_rules! key_numbers {
    ($($method:ident: $ty:ty),* $(,)?) => {
        $(fn $method(self, v: $ty) -> Result<(), NotFinite> {
            use std::fmt::Write;
            let _ = write!(self.0, "{v}");
            Ok(())
        })*
    };
}

impl ser::Serializer for KeyText<'_> {
    type Ok = ();
    type Error = NotFinite;
    type SerializeSeq = ser::Impossible<(), NotFinite>;
    type SerializeTuple = ser::Impossible<(), NotFinite>;
    type SerializeTupleStruct = ser::Impossible<(), NotFinite>;
    type SerializeTupleVariant = ser::Impossible<(), NotFinite>;
    type SerializeMap = ser::Impossible<(), NotFinite>;
    type SerializeStruct = ser::Impossible<(), NotFinite>;
    type SerializeStructVariant = ser::Impossible<(), NotFinite>;

    key_numbers!(
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128, serialize_char: char, serialize_bool: bool,
        serialize_f32: f32, serialize_f64: f64,
    );

    fn serialize_str(self, v: &str) -> Result<(), NotFinite> {
        self.0.push_str(v);
        Ok(())
    }

    fn serialize_bytes(self, _: &[u8]) -> Result<(), NotFinite> {
        Ok(())
    }

    fn serialize_none(self) -> Result<(), NotFinite> {
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), NotFinite> {
        v.serialize(self)
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
        v: &'static str,
    ) -> Result<(), NotFinite> {
        self.0.push_str(v);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), NotFinite> {
        v.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), NotFinite> {
        Ok(())
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotFinite> {
        Err(NotFinite(String::new()))
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotFinite> {
        Err(NotFinite(String::new()))
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotFinite> {
        Err(NotFinite(String::new()))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotFinite> {
        Err(NotFinite(String::new()))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotFinite> {
        Err(NotFinite(String::new()))
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, NotFinite> {
        Err(NotFinite(String::new()))
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotFinite> {
        Err(NotFinite(String::new()))
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
            to_json(&order, Root::Field("parameters")).unwrap(),
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
        let e = to_json(&order, Root::Field("parameters")).unwrap_err();
        assert!(e.starts_with("parameters.scores[2] is NaN"), "{e}");
        let weights = BTreeMap::from([("w".to_owned(), f32::INFINITY)]);
        let e = to_json(&weights, Root::Field("parameters")).unwrap_err();
        assert!(e.starts_with("parameters.w is inf"), "{e}");
        let e = to_json(&Some(f64::NEG_INFINITY), Root::Parameter("x")).unwrap_err();
        assert!(e.starts_with("parameter \"x\" is -inf"), "{e}");
        let e = to_json(&json!({"a": [{"b": 1}]}), Root::Field("parameters")).map(|_| ());
        assert!(e.is_ok(), "a Value holds no NaN: {e:?}");
    }
}
