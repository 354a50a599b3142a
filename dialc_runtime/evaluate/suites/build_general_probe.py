"""Seeded generator + hand-written items → general_probe.jsonl (the built-in general probe suite).

Run `python dialc_runtime/evaluate/suites/build_general_probe.py [--out PATH]`; the output is byte-for-byte
deterministic. Arithmetic, unit and date items are computed (dates with `datetime`), reading,
instruction and commonsense items are written by hand below. Every item has four distinct choices;
the correct one is placed so that each position 0..3 holds about a quarter of the answers, and
categories are interleaved so that a `limit` on the suite still spans all of them.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import json
import random
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

SEED = 20240314  # base seed; each category derives its own stream from it
OUT = Path(__file__).resolve().with_name("general_probe.jsonl")
COUNTS = {"arithmetic": 70, "units": 60, "dates": 60}  # generated items per category
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
]  # spelled out: calendar.month_name follows the locale

Item = tuple[str, str, list[str]]  # (question, correct answer, three distractors)
Rng = random.Random

# --- hand-written items: (passage, question, [correct, distractor, distractor, distractor]) ---

READING: list[tuple[str, str, list[str]]] = [
    ("Maya left home at 8:15 and arrived at school 20 minutes later.",
     "At what time did Maya arrive at school?", ["8:35", "8:25", "8:15", "8:45"]),
    ("The library is open from Monday to Friday. On Saturdays it opens only in the morning, "
     "and it is closed on Sundays.", "On which day is the library closed all day?",
     ["Sunday", "Saturday", "Monday", "Friday"]),
    ("Ben has two sisters, Ana and Lucy. Ana is older than Ben, and Lucy is younger than Ben.",
     "Who is the youngest of the three?", ["Lucy", "Ana", "Ben", "Ana and Ben"]),
    ("The red box is on top of the blue box. The green box is under the blue box.",
     "Which box is at the bottom?", ["the green box", "the red box", "the blue box",
                                      "the yellow box"]),
    ("Sam bought three notebooks for 2 dollars each and one pen for 1 dollar.",
     "How many dollars did Sam spend in total?", ["7", "6", "5", "8"]),
    ("The train to Lakeside leaves from platform 4 at 9:10. The train to Hillview leaves from "
     "platform 2 at 9:25.", "Which platform does the Hillview train leave from?",
     ["2", "4", "9", "10"]),
    ("Nora planted tomatoes in May, and they were ready to pick in August.",
     "What did Nora plant?", ["tomatoes", "potatoes", "roses", "apples"]),
    ("Entry to the museum costs 12 for adults and is free for children under 6. Leo is 5.",
     "How much does Leo pay to enter?", ["0", "6", "12", "5"]),
    ("Olivia wanted to go swimming, but the pool was closed for repairs, so she went cycling "
     "instead.", "What did Olivia do?", ["cycling", "swimming", "running", "repairing the pool"]),
    ("All the cups in the cupboard are white except one, which is yellow.",
     "What colour is the odd cup?", ["yellow", "white", "blue", "red"]),
    ("The meeting was moved from Tuesday to Thursday because the manager was travelling.",
     "On which day did the meeting take place?", ["Thursday", "Tuesday", "Wednesday", "Monday"]),
    ("Jonas reads 20 pages every evening. His book has 100 pages, and he started reading it on "
     "Monday evening.", "On which evening does he finish the book?",
     ["Friday", "Thursday", "Saturday", "Wednesday"]),
    ("The shop sells apples in bags of six. Rita bought two bags and ate one apple.",
     "How many apples does Rita have left?", ["11", "12", "5", "10"]),
    ("Clara's flight was supposed to land at 14:00, but it was delayed by two hours.",
     "At what time did the flight land?", ["16:00", "12:00", "14:00", "15:00"]),
    ("In the race, Ahmed finished before Ben, and Ben finished before Carla.",
     "Who finished last?", ["Carla", "Ahmed", "Ben", "nobody"]),
    ("A cake needs 3 eggs. Paul wants to bake 2 cakes, but he has only 4 eggs.",
     "How many more eggs does Paul need?", ["2", "6", "3", "1"]),
    ("Lena's cat is called Pepper and her dog is called Max.",
     "What is the name of Lena's dog?", ["Max", "Pepper", "Lena", "Salt"]),
    ("The park gates close at sunset. In winter, the sun sets at about 4:30 pm.",
     "Around what time do the park gates close in winter?",
     ["4:30 pm", "6:30 pm", "noon", "8:00 pm"]),
    ("Because the road was icy, the school bus drove slowly and the children arrived late.",
     "Why did the children arrive late?", ["the road was icy", "the bus broke down",
                                           "they overslept", "the school was closed"]),
    ("Tom is taller than Eva, and Eva is taller than Max.",
     "Who is the shortest?", ["Max", "Tom", "Eva", "Tom and Eva"]),
    ("The bakery sells bread until it runs out. On Monday it ran out at 11 am.",
     "Could you buy bread there at noon on Monday? Answer yes or no.",
     ["no", "yes", "only rye bread", "only with cash"]),
    ("Kim lives on the fourth floor. Her friend lives two floors above her.",
     "On which floor does Kim's friend live?", ["6", "2", "4", "8"]),
    ("The concert started at 7 pm and lasted two and a half hours.",
     "At what time did the concert end?", ["9:30 pm", "9:00 pm", "10:30 pm", "7:30 pm"]),
    ("Ines put her keys in her coat pocket and then hung the coat in the hall.",
     "Where are Ines's keys?", ["in her coat pocket", "on the kitchen table", "in the car",
                                "in her handbag"]),
    ("A sign at the pool says: No running. No glass bottles. Swimming caps must be worn.",
     "What must swimmers wear?", ["a swimming cap", "goggles", "sunglasses", "flip-flops"]),
    ("The company has 40 employees. Half of them work from home on Fridays.",
     "How many employees work from home on Fridays?", ["20", "40", "10", "30"]),
    ("Omar wrote the letter on Sunday and posted it the next day.",
     "On which day did Omar post the letter?", ["Monday", "Sunday", "Saturday", "Tuesday"]),
    ("Grandma's garden has roses along the fence and a lemon tree in the middle.",
     "What grows in the middle of the garden?", ["a lemon tree", "roses", "an apple tree",
                                                 "tulips"]),
    ("The printer on the second floor is broken, so everyone is using the one on the third "
     "floor.", "Which printer is working?", ["the one on the third floor",
                                             "the one on the second floor",
                                             "the one on the first floor", "neither of them"]),
    ("Julia drinks tea in the morning and coffee after lunch.",
     "What does Julia drink after lunch?", ["coffee", "tea", "juice", "water"]),
    ("The store had no large shirts left, so Marco bought a medium one.",
     "What size of shirt did Marco buy?", ["medium", "large", "small", "extra large"]),
    ("The recycling truck usually comes on Wednesday. This week Wednesday is a holiday, so it "
     "will come on Thursday instead.", "On which day will the truck come this week?",
     ["Thursday", "Wednesday", "Friday", "Tuesday"]),
    ("Anna has 5 red pencils and 3 blue pencils. She gives all the blue ones to her brother.",
     "How many pencils does Anna have now?", ["5", "8", "3", "2"]),
    ("The film was in French with English subtitles.",
     "In which language were the subtitles?", ["English", "French", "Spanish", "German"]),
    ("The hotel's check-out time is 11 am. Late check-out until 2 pm costs 30 extra.",
     "What is the latest time you can check out without paying extra?",
     ["11 am", "2 pm", "noon", "10 am"]),
    ("David's phone battery was at 10 percent, so he plugged it in before leaving the house.",
     "Why did David plug in his phone?", ["the battery was low", "the screen was broken",
                                          "he wanted to call someone", "it was too hot"]),
    ("The bridge is closed to trucks but open to cars and bicycles.",
     "Which of these cannot cross the bridge?", ["a truck", "a car", "a bicycle",
                                                 "a small car"]),
    ("Ruth ate half of a pizza that was cut into 8 slices.",
     "How many slices did Ruth eat?", ["4", "8", "2", "6"]),
    ("The farmer counted 12 sheep in the morning. In the afternoon he sold 3 of them.",
     "How many sheep did he have left?", ["9", "15", "12", "3"]),
    ("Leo forgot his umbrella, and it rained on his way home, so he got wet.",
     "What did Leo forget?", ["his umbrella", "his keys", "his wallet", "his coat"]),
    ("The first lesson starts at 8:00. Each lesson lasts 45 minutes, with no breaks between.",
     "At what time does the second lesson end?", ["9:30", "8:45", "9:45", "9:15"]),
    ("Hana is 12 years old. Her brother is 3 years older than her.",
     "How old is Hana's brother?", ["15", "9", "12", "36"]),
]

# --- hand-written items: (question, [correct, distractor, distractor, distractor]) ---

INSTRUCTION: list[tuple[str, list[str]]] = [
    ("Answer with the word that comes first alphabetically: pear, apple, mango, kiwi.",
     ["apple", "pear", "mango", "kiwi"]),
    ("Answer with the word that comes last alphabetically: lion, zebra, otter, yak.",
     ["zebra", "lion", "otter", "yak"]),
    ("Write the word 'garden' in capital letters.", ["GARDEN", "garden", "Garden", "GARDENS"]),
    ("Answer with the last word of this sentence: The cat sat on the warm mat.",
     ["mat", "The", "warm", "cat"]),
    ("Reverse the letters of the word 'stressed'.", ["desserts", "stressed", "dessert",
                                                      "sserts"]),
    ("How many letters are in the word 'planet'? Answer with a number.", ["6", "5", "7", "4"]),
    ("Answer with the longest word: cat, elephant, dog, horse.",
     ["elephant", "horse", "cat", "dog"]),
    ("Answer with the shortest word: butterfly, ant, spider, beetle.",
     ["ant", "spider", "beetle", "butterfly"]),
    ("Answer only yes or no: is 17 an even number?", ["no", "yes", "maybe", "17"]),
    ("Write the number twenty-three using digits.", ["23", "32", "203", "2003"]),
    ("Spell the word 'seven' backwards.", ["neves", "seven", "nevs", "evens"]),
    ("Answer with the first letter of the word 'umbrella'.", ["u", "a", "m", "e"]),
    ("Answer with the word from this list that is a colour: table, green, river, spoon.",
     ["green", "table", "river", "spoon"]),
    ("Write the numbers 9, 2 and 5 in ascending order, separated by commas without spaces.",
     ["2,5,9", "9,5,2", "2,9,5", "5,2,9"]),
    ("Write 'hello world' in title case.",
     ["Hello World", "HELLO WORLD", "hello world", "Hello world"]),
    ("Answer with the second word of this sentence: Bright stars shine at night.",
     ["stars", "Bright", "shine", "night"]),
    ("Join the words 'sun' and 'flower' into one word.",
     ["sunflower", "sun flower", "flowersun", "sun-flower"]),
    ("Replace every vowel in the word 'banana' with an asterisk (*).",
     ["b*n*n*", "*a*a*a", "b*nan*", "banana*"]),
    ("Answer with the smallest number: 14, 41, 4, 40.", ["4", "14", "40", "41"]),
    ("Answer with the largest number: 305, 350, 53, 35.", ["350", "305", "53", "35"]),
    ("How many words are in this sentence: Rain falls on the quiet town? Answer with a number.",
     ["6", "5", "7", "4"]),
    ("Answer with the plural of the word 'mouse'.", ["mice", "mouses", "mouse", "meese"]),
    ("Answer with the opposite of the word 'cold'.", ["hot", "cool", "cold", "icy"]),
    ("Write the word 'Python' in lower case.", ["python", "Python", "PYTHON", "pYTHON"]),
    ("Repeat the word 'go' three times, separated by hyphens.",
     ["go-go-go", "go go go", "go-go", "gogogo"]),
    ("How many vowels are in the word 'education'? Answer with a number.",
     ["5", "4", "6", "9"]),
    ("Write the date 4 July 2025 in the format YYYY-MM-DD.",
     ["2025-07-04", "2025-04-07", "04-07-2025", "2025-7-4"]),
    ("Answer with the word from this list that rhymes with 'cat': dog, hat, cup, sun.",
     ["hat", "dog", "cup", "sun"]),
    ("Remove the spaces from 'ice cream cone'.",
     ["icecreamcone", "ice cream cone", "icecream cone", "ice-cream-cone"]),
    ("Answer with the initials of 'World Health Organization'.", ["WHO", "WHOR", "WH", "who"]),
    ("Put the word 'note' inside square brackets.", ["[note]", "(note)", "{note}", "<note>"]),
    ("Answer with the odd one out: apple, banana, carrot, cherry.",
     ["carrot", "apple", "banana", "cherry"]),
    ("Write the number 1000 in words.",
     ["one thousand", "one hundred", "ten thousand", "one million"]),
    ("Answer with the third letter of the English alphabet.", ["c", "b", "d", "a"]),
    ("Answer true or false: the word 'level' reads the same backwards.",
     ["true", "false", "level", "maybe"]),
    ("Sort the letters of 'dcba' into alphabetical order.", ["abcd", "dcba", "abdc", "bacd"]),
    ("Answer with the word that comes next: Monday, Tuesday, Wednesday, ...",
     ["Thursday", "Friday", "Sunday", "Tuesday"]),
    ("Add the suffix '-ness' to the word 'kind'.",
     ["kindness", "kindnes", "kind-ness", "kindliness"]),
    ("Answer with the last letter of the word 'journey'.", ["y", "j", "e", "n"]),
    ("Write the number 9 as a Roman numeral.", ["IX", "XI", "VIIII", "IV"]),
    ("Rewrite 'tOMATO' so that only its first letter is a capital.",
     ["Tomato", "tOMATO", "TOMATO", "tomato"]),
    ("Answer with the word that appears twice in this list: red, blue, green, blue, yellow.",
     ["blue", "red", "green", "yellow"]),
]

COMMONSENSE: list[tuple[str, list[str]]] = [
    ("What do people usually use to cut paper?", ["scissors", "a spoon", "a pillow", "a bucket"]),
    ("Which of these melts if it is left in the sun?",
     ["an ice cube", "a stone", "a nail", "a brick"]),
    ("Where do people usually keep milk so that it stays fresh?",
     ["in the refrigerator", "in the oven", "on a bookshelf", "in the bathtub"]),
    ("What would help you see in a completely dark room?",
     ["a torch", "sunglasses", "a blanket", "a fork"]),
    ("Which animal is kept on farms for the milk people drink?",
     ["a cow", "a snake", "an eagle", "a shark"]),
    ("What might you carry to stay dry when it is raining?",
     ["an umbrella", "sunglasses", "a fan", "a shovel"]),
    ("Which season comes after winter?", ["spring", "summer", "autumn", "evening"]),
    ("What do plants need from the sun in order to grow?", ["light", "sand", "noise", "salt"]),
    ("What do teachers traditionally use to write on a blackboard?",
     ["chalk", "a spoon", "soap", "a candle"]),
    ("Which is heavier, a bowling ball or a feather?",
     ["the bowling ball", "the feather", "they weigh the same", "it depends on the colour"]),
    ("Where do fish usually live?", ["in water", "in trees", "in deserts", "in clouds"]),
    ("What is a key usually used for?",
     ["opening a lock", "boiling water", "cutting bread", "measuring weight"]),
    ("What happens to water when it is heated to 100 degrees Celsius at sea level?",
     ["it boils", "it freezes", "it turns into sand", "it becomes solid"]),
    ("Which meal is usually eaten in the morning?",
     ["breakfast", "dinner", "supper", "a midnight snack"]),
    ("What do bees make?", ["honey", "milk", "silk", "wool"]),
    ("What usually happens to a glass that falls onto a stone floor?",
     ["it breaks", "it bounces like a ball", "it grows", "it melts"]),
    ("What should a driver do when the traffic light turns red?",
     ["stop", "speed up", "reverse", "switch lanes"]),
    ("Which object helps you find which way is north?",
     ["a compass", "a thermometer", "a ruler", "a kettle"]),
    ("Why do people wear coats in winter?",
     ["to stay warm", "to stay wet", "to run faster", "to look taller"]),
    ("What do we call frozen water that falls from clouds as soft white flakes?",
     ["snow", "rain", "fog", "dew"]),
    ("Where can you usually borrow a book for free?",
     ["a library", "a bakery", "a petrol station", "a gym"]),
    ("What do you use to brush your teeth?",
     ["a toothbrush", "a hairbrush", "a paintbrush", "a broom"]),
    ("What do birds use to fly?", ["wings", "fins", "wheels", "roots"]),
    ("What should a thirsty person do?",
     ["drink something", "go to sleep", "run a race", "read a book"]),
    ("What eventually happens to a balloon if you keep blowing more air into it?",
     ["it pops", "it turns into water", "it gets smaller", "it sinks"]),
    ("Which of these places is the coldest?",
     ["the North Pole", "a desert at noon", "a hot oven", "a sunny beach"]),
    ("Which of these can you eat?", ["an apple", "a stone", "a spoon", "a shoe"]),
    ("What is a baby dog called?", ["a puppy", "a kitten", "a calf", "a foal"]),
    ("What do people use to pay for things in a shop?", ["money", "leaves", "sand", "water"]),
    ("Who do you usually go to see when you are ill?",
     ["a doctor", "a plumber", "a pilot", "a baker"]),
    ("Which tool is best for knocking a nail into wood?",
     ["a hammer", "a spoon", "a pillow", "a sponge"]),
    ("At about what time of day is the sun highest in the sky?",
     ["around noon", "at midnight", "at dawn", "at dusk"]),
    ("How many legs does a spider have?", ["8", "6", "4", "10"]),
    ("What happens to ice cream that is left out on a hot day?",
     ["it melts", "it freezes harder", "it turns into bread", "it grows bigger"]),
    ("What do people wear on their feet?", ["shoes", "gloves", "hats", "scarves"]),
    ("Which is usually faster, a car on a motorway or a person walking?",
     ["the car", "the person walking", "they are equally fast", "neither of them moves"]),
    ("What do you look at to find out what time it is?",
     ["a clock", "a map", "a plate", "a pillow"]),
    ("What do we call the person who flies an aeroplane?",
     ["a pilot", "a chef", "a farmer", "a dentist"]),
    ("In which room of a house do people usually sleep?",
     ["the bedroom", "the kitchen", "the garage", "the bathroom"]),
    ("What do cows mainly eat?", ["grass", "meat", "rocks", "plastic"]),
    ("If you let go of a ball while standing, which way does it fall?",
     ["down", "up", "sideways", "it floats"]),
    ("What do you need to do before you can eat an orange?",
     ["peel it", "freeze it", "paint it", "plant it"]),
]


def fmt(value: Decimal | int) -> str:
    """A number as plain digits: no exponent, no trailing zeros, no thousands separators."""
    text = format(Decimal(value).normalize(), "f")
    return "0" if text in ("-0", "") else text


def pick_wrong(rng: Rng, answer: str, candidates: list[str], fallback: list[str]) -> list[str]:
    """Three distinct wrong answers: plausible `candidates` first (in random order), then
    `fallback` in order, skipping the answer and repeats."""
    pool = rng.sample(candidates, len(candidates)) + fallback
    wrong: list[str] = []
    for choice in pool:
        if choice != answer and choice not in wrong:
            wrong.append(choice)
    if len(wrong) < 3:
        raise ValueError(f"not enough distractors for {answer!r}")
    return wrong[:3]


def numeric(rng: Rng, question: str, answer: int, slips: list[int]) -> Item:
    """An integer item: distractors from typical slips, then ±1, ±2, ±10 (all non-negative)."""
    near = [answer + d for d in (1, -1, 2, -2, 10, -10, 3, -3)]
    valid = [fmt(n) for n in slips if n >= 0]
    return question, fmt(answer), pick_wrong(rng, fmt(answer), valid, [fmt(n) for n in near
                                                                         if n >= 0])


# --- arithmetic ---


def add_item(rng: Rng) -> Item:
    a, b = rng.randint(100, 999), rng.randint(100, 999)
    s = a + b
    return numeric(rng, f"What is {a} + {b}?", s, [s + 10, s - 10, s + 100, s - 100, s + 1])


def sub_item(rng: Rng) -> Item:
    a = rng.randint(300, 999)
    b = rng.randint(100, a - 50)
    d = a - b
    return numeric(rng, f"What is {a} - {b}?", d, [d + 10, d - 10, d + 100, a + b, d - 1])


def mul_item(rng: Rng) -> Item:
    a, b = rng.randint(12, 99), rng.randint(3, 19)
    p = a * b
    return numeric(rng, f"What is {a} × {b}?", p, [p + a, p - a, p + 10, p - b, a + b])


def div_item(rng: Rng) -> Item:
    b, q = rng.randint(3, 15), rng.randint(6, 60)
    return numeric(rng, f"What is {b * q} divided by {b}?", q, [q + 1, q - 1, q + 10, q * 10])


def percent_item(rng: Rng) -> Item:
    p = rng.choice([10, 15, 20, 25, 30, 40, 60, 75])
    n = 20 * rng.randint(2, 40)
    r = n * p // 100
    return numeric(rng, f"What is {p}% of {n}?", r, [n * (100 - p) // 100, r + n // 10,
                                                     r - n // 10, n * p // 10])


def precedence_item(rng: Rng) -> Item:
    a, b, c = rng.randint(2, 20), rng.randint(2, 9), rng.randint(2, 9)
    r = a + b * c
    return numeric(rng, f"What is {a} + {b} × {c}?", r, [(a + b) * c, a * b + c, a + b + c])


def eggs_item(rng: Rng) -> Item:
    k, m = rng.choice([6, 10, 12, 15, 24]), rng.randint(3, 12)
    question = f"A box holds {k} eggs. How many eggs are in {m} full boxes? Answer with a number."
    return numeric(rng, question, k * m, [k + m, k * (m - 1), k * (m + 1)])


def stickers_item(rng: Rng) -> Item:
    x, y = rng.randint(20, 90), rng.randint(5, 40)
    z = rng.randint(3, x)
    question = (f"Mia has {x} stickers. She buys {y} more and then gives {z} to her brother. "
                "How many stickers does she have now? Answer with a number.")
    return numeric(rng, question, x + y - z, [x + y + z, x + y, x - y + z, x - z])


ARITHMETIC: list[Callable[[Rng], Item]] = [
    add_item, sub_item, mul_item, div_item, percent_item, precedence_item, eggs_item,
    stickers_item,
]

# --- units: (from unit, to unit, factor, smallest and largest value, value step) ---

CONVERSIONS: list[tuple[str, str, str, int, int, str]] = [
    ("kilometres", "metres", "1000", 11, 99, "0.1"),
    ("metres", "centimetres", "100", 5, 40, "0.25"),
    ("centimetres", "millimetres", "10", 3, 90, "0.5"),
    ("metres", "kilometres", "0.001", 3, 90, "50"),
    ("kilograms", "grams", "1000", 11, 99, "0.1"),
    ("grams", "kilograms", "0.001", 3, 60, "50"),
    ("litres", "millilitres", "1000", 3, 40, "0.25"),
    ("millilitres", "litres", "0.001", 3, 60, "50"),
    ("hours", "minutes", "60", 3, 30, "0.5"),
    ("minutes", "seconds", "60", 2, 45, "1"),
    ("hours", "seconds", "3600", 2, 12, "1"),
    ("days", "hours", "24", 2, 21, "1"),
    ("weeks", "days", "7", 2, 52, "1"),
    ("feet", "inches", "12", 2, 25, "1"),
    ("inches", "centimetres", "2.54", 2, 40, "1"),
    ("yards", "feet", "3", 2, 60, "1"),
    ("pounds", "ounces", "16", 2, 20, "1"),
]


def conversion_item(rng: Rng, spec: tuple[str, str, str, int, int, str]) -> Item:
    """`How many <to> are in <v> <from>?`; slips: a power of ten off, one unit more or less."""
    source, target, factor_text, low, high, step_text = spec
    factor, step = Decimal(factor_text), Decimal(step_text)
    value = step * rng.randint(low, high)
    answer = value * factor
    slips = [answer * 10, answer / 10, (value + step) * factor, (value - step) * factor]
    question = f"How many {target} are in {fmt(value)} {source}? Answer with a number."
    wrong = [fmt(s) for s in slips if s > 0]
    return question, fmt(answer), pick_wrong(rng, fmt(answer), wrong, [fmt(answer * 100)])


def temperature_item(rng: Rng) -> Item:
    """Celsius → Fahrenheit on multiples of 5, so the answer is a whole number."""
    c = 5 * rng.randint(-6, 20)
    f = c * 9 // 5 + 32
    question = f"What is {c} degrees Celsius in degrees Fahrenheit? Answer with a number."
    slips = [fmt(c * 9 // 5), fmt(c + 32), fmt(f + 10), fmt(f - 10)]
    return question, fmt(f), pick_wrong(rng, fmt(f), slips, [fmt(f + 1), fmt(f - 1)])


def unit_item(rng: Rng, index: int) -> Item:
    if index % 9 == 8:
        return temperature_item(rng)
    return conversion_item(rng, CONVERSIONS[(index - index // 9) % len(CONVERSIONS)])


# --- dates ---


def say(day: dt.date) -> str:
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def random_day(rng: Rng, first: int, last: int) -> dt.date:
    start = dt.date(first, 1, 1)
    return start + dt.timedelta(days=rng.randrange((dt.date(last, 12, 31) - start).days))


def weekday_item(rng: Rng) -> Item:
    day = random_day(rng, 1950, 2050)
    answer = WEEKDAYS[day.weekday()]
    others = [w for w in WEEKDAYS if w != answer]
    return f"On what day of the week does {say(day)} fall?", answer, rng.sample(others, 3)


def add_days_item(rng: Rng) -> Item:
    day, n = random_day(rng, 1990, 2035), rng.randint(10, 150)
    answer = day + dt.timedelta(days=n)
    slips = [say(answer + dt.timedelta(days=d)) for d in (-1, 1, -2, 2, 7, -7)]
    return f"What date is {n} days after {say(day)}?", say(answer), pick_wrong(
        rng, say(answer), slips, [])


def between_item(rng: Rng) -> Item:
    first, n = random_day(rng, 1990, 2035), rng.randint(12, 250)
    second = first + dt.timedelta(days=n)
    question = f"How many days after {say(first)} is {say(second)}? Answer with a number."
    return numeric(rng, question, n, [n + 1, n - 1, n + 30, n - 30, n + 2])


def offset_item(rng: Rng) -> Item:
    today, n = rng.randrange(7), rng.randint(3, 100)
    answer = WEEKDAYS[(today + n) % 7]
    near = [WEEKDAYS[(today + n + d) % 7] for d in (1, -1, 2, -2, 3)]
    question = f"If today is {WEEKDAYS[today]}, what day of the week will it be in {n} days?"
    return question, answer, pick_wrong(rng, answer, near, WEEKDAYS)


def month_length_item(rng: Rng) -> Item:
    year = rng.randint(1896, 2104)
    month = 2 if rng.random() < 0.6 else rng.randint(1, 12)
    answer = str(calendar.monthrange(year, month)[1])
    question = f"How many days are there in {MONTHS[month - 1]} {year}?"
    return question, answer, [n for n in ("28", "29", "30", "31") if n != answer][:3]


DATES: list[Callable[[Rng], Item]] = [
    weekday_item, add_days_item, between_item, offset_item, month_length_item,
]


# --- assembly ---


def generated(category: str, rng: Rng) -> list[Item]:
    """`COUNTS[category]` computed items with distinct questions."""
    items: list[Item] = []
    seen: set[str] = set()
    index = 0
    while len(items) < COUNTS[category]:
        if category == "units":
            item = unit_item(rng, index)
        else:
            makers = ARITHMETIC if category == "arithmetic" else DATES
            item = makers[index % len(makers)](rng)
        index += 1
        if item[0] not in seen:
            seen.add(item[0])
            items.append(item)
    return items


def handwritten(category: str) -> list[Item]:
    if category == "reading":
        return [(f"{passage}\n{question}", c[0], c[1:]) for passage, question, c in READING]
    rows = INSTRUCTION if category == "instruction" else COMMONSENSE
    return [(question, c[0], c[1:]) for question, c in rows]


def place(category: str, items: list[Item], rng: Rng) -> list[dict[str, object]]:
    """Rows with the right answer at balanced positions: a shuffled cycle of 0..3."""
    positions = [i % 4 for i in range(len(items))]
    rng.shuffle(positions)
    rows: list[dict[str, object]] = []
    for (question, answer, wrong), position in zip(items, positions, strict=True):
        choices = rng.sample(wrong, len(wrong))
        choices.insert(position, answer)
        if len(set(choices)) != 4:
            raise ValueError(f"choices not distinct: {choices}")
        row = {"category": category, "question": question, "choices": choices,
               "answer": position, "target": answer}
        rows.append(row)
    return rows


def interleave(groups: list[list[dict[str, object]]]) -> Iterator[dict[str, object]]:
    """Round-robin over the categories, so any prefix of the suite spans all of them."""
    for rank in range(max(len(g) for g in groups)):
        yield from (g[rank] for g in groups if rank < len(g))


def build() -> list[dict[str, object]]:
    categories = ["arithmetic", "units", "dates", "reading", "instruction", "commonsense"]
    groups = []
    for number, category in enumerate(categories):
        rng = random.Random(SEED * 10 + number)
        items = generated(category, rng) if category in COUNTS else handwritten(category)
        groups.append(place(category, items, rng))
    return [{"id": f"gp-{i:04d}", **row} for i, row in enumerate(interleave(groups), start=1)]


def write(path: Path) -> int:
    rows = build()
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    path.write_text(text, encoding="utf-8")
    return len(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the built-in general probe suite.")
    parser.add_argument("--out", type=Path, default=OUT, help="output jsonl (default: %(default)s)")
    args = parser.parse_args(argv)
    print(f"wrote {write(args.out)} items to {args.out}")


if __name__ == "__main__":
    main()
