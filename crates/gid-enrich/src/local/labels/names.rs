//! ImageNet-1k class names and their Rekognition-style label names.

use std::sync::OnceLock;

use super::efficientnet::NUM_CLASSES;

/// The 1000 ImageNet-1k class names in class-index order, one per line (WordNet lemmas,
/// e.g. line 671 is `motor scooter, scooter`). Source and licence: `assets/README.md`.
const IMAGENET_CLASSES: &str = include_str!("../../../assets/imagenet_classes.txt");

/// ImageNet classes that get a Rekognition-style name other than their own. Inclusive index
/// ranges; anything not listed is named after its first WordNet lemma in Title Case.
///
/// ImageNet has no kick-scooter (stand-up e-scooter) class: 665 `moped` and 670 `motor
/// scooter` are seated, motorised scooters. They are the closest the model can see, so they
/// are what `Scooter` means here.
const REKOGNITION_NAMES: &[(u16, u16, &str)] = &[
    (7, 24, "Bird"),
    (80, 100, "Bird"),
    (127, 146, "Bird"),
    (151, 268, "Dog"),
    (281, 285, "Cat"),
    (412, 412, "Trash Can"),
    (436, 436, "Car"),
    (444, 444, "Bicycle"),
    (466, 466, "Train"),
    (468, 468, "Car"),
    (511, 511, "Car"),
    (547, 547, "Train"),
    (555, 555, "Fire Truck"),
    (565, 565, "Train"),
    (569, 569, "Garbage Truck"),
    (609, 609, "Car"),
    (627, 627, "Car"),
    (654, 654, "Bus"),
    (656, 656, "Car"),
    (661, 661, "Car"),
    (665, 665, "Scooter"),
    (670, 670, "Scooter"),
    (671, 671, "Bicycle"),
    (675, 675, "Van"),
    (703, 703, "Bench"),
    (705, 705, "Train"),
    (717, 717, "Pickup Truck"),
    (734, 734, "Van"),
    (751, 751, "Car"),
    (779, 779, "Bus"),
    (817, 817, "Car"),
    (820, 820, "Train"),
    (829, 829, "Tram"),
    (864, 864, "Tow Truck"),
    (867, 867, "Truck"),
    (874, 874, "Bus"),
    (919, 919, "Road Sign"),
    (981, 983, "Person"),
];

/// The ImageNet class names, parsed once.
pub(crate) fn imagenet_classes() -> &'static [&'static str] {
    static CLASSES: OnceLock<Vec<&'static str>> = OnceLock::new();
    CLASSES.get_or_init(|| {
        let classes: Vec<&str> = IMAGENET_CLASSES.lines().collect();
        assert_eq!(
            classes.len(),
            NUM_CLASSES,
            "imagenet_classes.txt line count"
        );
        classes
    })
}

/// Rekognition-style name of ImageNet class `index` (see [`REKOGNITION_NAMES`]).
pub(crate) fn rekognition_name(index: usize) -> String {
    if let Some(&(_, _, name)) = REKOGNITION_NAMES
        .iter()
        .find(|&&(first, last, _)| (first as usize..=last as usize).contains(&index))
    {
        return name.to_owned();
    }
    let lemma = imagenet_classes()[index]
        .split(',')
        .next()
        .unwrap_or_default();
    title_case(lemma.trim())
}

/// `motor scooter` → `Motor Scooter`, `Granny Smith` unchanged.
fn title_case(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_class_file_has_the_imagenet_order() {
        let classes = imagenet_classes();
        assert_eq!(classes[0], "tench, Tinca tinca");
        assert_eq!(classes[281], "tabby, tabby cat");
        assert_eq!(classes[665], "moped");
        assert_eq!(classes[670], "motor scooter, scooter");
        assert_eq!(classes[999], "toilet tissue, toilet paper, bathroom tissue");
    }

    #[test]
    fn mopeds_and_motor_scooters_are_scooters() {
        assert_eq!(rekognition_name(665), "Scooter");
        assert_eq!(rekognition_name(670), "Scooter");
        assert_eq!(rekognition_name(669), "Mosquito Net");
        assert_eq!(rekognition_name(671), "Bicycle");
    }

    #[test]
    fn families_of_classes_share_one_name() {
        assert_eq!(rekognition_name(444), "Bicycle");
        for cat in 281..=285 {
            assert_eq!(rekognition_name(cat), "Cat");
        }
        assert_eq!(rekognition_name(286), "Cougar"); // big cats are not "Cat"
        for dog in [151, 207, 268] {
            assert_eq!(rekognition_name(dog), "Dog");
        }
        assert_eq!(rekognition_name(269), "Timber Wolf");
        for car in [436, 468, 511, 609, 627, 656, 661, 751, 817] {
            assert_eq!(rekognition_name(car), "Car", "class {car}");
        }
        assert_eq!(rekognition_name(412), "Trash Can");
        assert_eq!(rekognition_name(981), "Person");
    }

    #[test]
    fn other_classes_use_their_first_lemma_in_title_case() {
        assert_eq!(rekognition_name(967), "Espresso");
        assert_eq!(rekognition_name(920), "Traffic Light");
        assert_eq!(rekognition_name(948), "Granny Smith");
        assert_eq!(rekognition_name(704), "Parking Meter");
    }

    #[test]
    fn every_class_has_a_name_and_the_table_is_sorted_and_in_range() {
        for i in 0..NUM_CLASSES {
            assert!(!rekognition_name(i).is_empty(), "class {i}");
        }
        for pair in REKOGNITION_NAMES.windows(2) {
            assert!(
                pair[0].1 < pair[1].0,
                "overlap or disorder at {:?}",
                pair[1]
            );
        }
        assert!(REKOGNITION_NAMES
            .iter()
            .all(|&(a, b, _)| a <= b && (b as usize) < NUM_CLASSES));
    }
}
