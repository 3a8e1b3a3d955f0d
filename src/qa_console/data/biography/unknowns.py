"""What the biography bot must say "I don't know." to: invented people who are not in the table,
and general questions the dataset says nothing about.

Two disjoint pools of each. The training pool teaches abstention; the held-out pool makes the
`unknown` split, so its names (first names and surnames alike) and questions never appear in
training: a model that passes it abstains on people it has never heard of, not on names it was
shown. make_dataset.py checks that neither pool shares a name part with people.csv.
"""

from __future__ import annotations


def _names(text: str) -> list[str]:
    """A whitespace-separated block of names as a list (easier to read and edit than quotes)."""
    return text.split()


TRAIN_FIRST_NAMES = _names(
    """
Albrecht Brisa Cordelia Dashiell Esmond Florian Greta Hamish Imelda Jasper Kestrel Lorcan Maelis
Nikolai Odalys Pascoe Rhiannon Severin Talitha Ulric Verity Wystan Xanthe Yorick Zelda Anselm
Briony Cillian Dagny Emrys Fiora Gaspard Honora Ivo Jessamy Kasimir Lavinia Matthias Nell Osric
Aldous Bettina Caius Dorothea Eamon Felicity Godric Harriet Ingram Juniper Kenelm Lettice Mordecai
Nerys Orla Piers Quillon Rowena Silas Tegan Urien Vesna Warrick Zinnia Alban Blythe Crispin Delia
Edwy Fenella Galen Hester Idris Jocasta Kit Lisette Marius Norah Oswin Philippa
"""
)
TRAIN_SURNAMES = _names(
    """
Abernathy Belvoir Calloway Dunmore Ellingham Fothergill Gravesend Hartigan Inchcombe Jessop
Kinsella Lockridge Mallory Northcott Ormsby Pendry Quayle Rookwood Stanhope Thistlewood Upcott
Vellacott Wexley Yardley Zennor Ashgrove Birkett Colquhoun Dimmock Everard Fallowes Gorringe
Halloran Ivesdale Jarrow Kilbride Lusk Mortlake Nettleship Overbury Ackroyd Bramall Cheverton
Dalrymple Eggleston Farquhar Goodbody Hawksworth Ibbotson Jellicoe Knatchbull Loxley Mabey
Nethercott Oldroyd Pargeter Quarrie Ridsdale Sackville Tolley Underhill Varley Wadsworth Yeoman
Zouch Aldridge Brocklehurst Cawthorne Dewhurst Entwistle Fairbairn Grimshaw Hepplewhite
Illingworth Jubb Kitching Lightfoot Moxon Newbould Ormerod
"""
)

HELD_OUT_FIRST_NAMES = _names(
    """
Aurora Bastian Clementine Elspeth Fabian Giselle Horace Jolyon Katya Leander Morwenna Nathaniel
Ophelia Peregrine Roswitha Sebastian Theodora Valentin Winifred Zephyr
"""
)
HELD_OUT_SURNAMES = _names(
    """
Amberley Blenkinsop Crowther Drummond Eastwick Glanville Hesketh Ingleby Jardine Kershaw
Langdale Merriweather Nunnery Oakshott Pemberton Ravensworth Scrivener Tregothnan Umfreville
Wolstenholme
"""
)

# Questions about the world, including real people: the bot knows only its invented biographies.
TRAIN_GENERAL_QUESTIONS = [
    "What is the capital of France?",
    "Who wrote Hamlet?",
    "At what temperature does water boil?",
    "What is the tallest mountain in the world?",
    "How many legs does a spider have?",
    "What colour is the sky?",
    "Who painted the Mona Lisa?",
    "What is two plus two?",
    "Which is the largest ocean?",
    "What is the chemical symbol for gold?",
    "Who discovered penicillin?",
    "How fast does light travel?",
    "What is the weather like today?",
    "What time is it?",
    "Who is the president of the United States?",
    "How far away is the Moon?",
    "What language is spoken in Brazil?",
    "When did the Second World War end?",
    "What is the largest planet?",
    "How do I bake bread?",
    "What is your name?",
    "Tell me a joke.",
    "What is the square root of 81?",
    "Who invented the telephone?",
    "What is the currency of Japan?",
    "How many continents are there?",
    "Which is the longest river?",
    "What is photosynthesis?",
    "Where is the Eiffel Tower?",
    "When was Albert Einstein born?",
    "Where was William Shakespeare born?",
    "Who did Queen Victoria marry?",
    "What was the profession of Charles Darwin?",
    "What is Isaac Newton best known for?",
    "Which prize did Marie Curie win?",
    "Where did Ada Lovelace study?",
    "What is the meaning of life?",
    "Can you recommend a good book?",
    "How many days are in a leap year?",
    "What is the population of China?",
    "What is the capital of Spain?",
    "Who wrote Pride and Prejudice?",
    "How many planets are in the solar system?",
    "What is the freezing point of mercury?",
    "Which animal is the largest mammal?",
    "How many hours are in a day?",
    "Who built the pyramids?",
    "How fast can a cheetah run?",
    "Where is Mount Kilimanjaro?",
    "How does a rainbow form?",
    "Who was Cleopatra?",
    "Which country has the most people?",
    "What do bees make?",
    "How old is the universe?",
    "What is the hardest natural material?",
    "Name the largest city in Australia.",
    "When did the Berlin Wall fall?",
    "Who discovered gravity?",
    "What is the main ingredient of guacamole?",
    "How many bones are in the human body?",
]
HELD_OUT_GENERAL_QUESTIONS = [
    "What is the capital of Italy?",
    "Who wrote War and Peace?",
    "At what temperature does water freeze?",
    "What is the smallest planet?",
    "How many strings does a violin have?",
    "Who composed the Moonlight Sonata?",
    "What is the boiling point of milk?",
    "When was Wolfgang Amadeus Mozart born?",
    "Where was Leonardo da Vinci born?",
    "Who did Pierre Curie marry?",
    "What award did Nelson Mandela receive?",
    "Which university did Alan Turing attend?",
    "What is the speed of sound?",
    "How do airplanes fly?",
    "What is the largest desert on Earth?",
    "Who was the first person on the Moon?",
]
